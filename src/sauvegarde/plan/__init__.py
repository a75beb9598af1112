"""The disaster-recovery plan: the plan file's model and loader, compliance rules, schedules, and carrying it out."""
