"""The registry of a trial: companies, care homes and units, trials and their lifecycle,
participants, consent, activities and time observations. What a trial showed is evidence/."""
