"""What a trial showed: usage rollups, time saved, the business case, success criteria and
caveats, surveys (MAST), the report and the exports. Reads the registry (trials/); the registry
never reads it."""
