-- depends: 0010_ingest_counted_messages
-- The device time of the last seq, so that a device whose counter restarts (a reboot) is told
-- apart from a late or repeated message (ingest/sequences.py). Unknown for marks stored before.
ALTER TABLE device_sequences ADD COLUMN last_ts timestamptz;
