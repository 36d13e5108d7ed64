-- depends: 0002_timescale
-- Device health as dashboards and the API read it: each active device with where it is deployed
-- now and whether it is online. Offline = nothing for three of its type's expected intervals
-- (devices/health.py OFFLINE_AFTER_INTERVALS); never seen = offline. No participant column: the
-- company dashboards build on this view and must not see who a device is with.
-- Plain SQL: the same on PostgreSQL 15 and on TimescaleDB.

CREATE VIEW device_health_status AS
SELECT d.id                                        AS device_id,
       d.kind,
       d.device_type,
       d.company_id                                AS supplier_company_id,
       dep.trial_id,
       dep.site_id,
       dep.unit_id,
       h.last_seen_at,
       h.last_status_at,
       h.battery,
       h.rssi,
       coalesce(h.firmware, d.firmware)            AS firmware,
       coalesce(h.last_seen_at > now() - 3 * t.expected_interval, false) AS online,
       t.expected_interval
FROM devices d
JOIN device_types t ON t.code = d.device_type
LEFT JOIN device_health h ON h.device_id = d.id
LEFT JOIN deployments dep ON dep.device_id = d.id AND dep.valid_during @> now()
WHERE d.revoked_at IS NULL;

GRANT SELECT ON device_health_status TO ldl_app;
