"""The domain of a trial: registry, lifecycle, participants, consent, activities, evaluation."""
