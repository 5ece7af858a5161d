"""What a pseudonymised export may include by name (`smp export --include`), and what each
holds. Apart from sessions/pseudonymised.py, which applies it, so that the command line can
offer the choice without loading the record's code."""

INCLUDE = {
    "notes": "zone notes and timeline notes",
    "reasons": "the gate's override and acknowledgement reasons (with the items they answer) "
               "and the interval answer",
    "corrections": "the texts of corrections",
    "health": "the health fields (hair colour, hair-loss stage and cause, Fitzpatrick type, "
              "skin quality, patch test) and the gate's answers",
    "allergies": "allergies",
    "medications": "medications",
}
