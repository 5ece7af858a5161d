"""The aftercare sheet given to the client, in the client's words: one text for the screen
at the end of a session and for the client's PDF (docs/domain.md, "Aftercare")."""

AFTERCARE = (
    "Do not wash the scalp for 3 days (keep it dry for 72 hours).",
    "Keep out of the sun for 7 days; after that use SPF 30 to 50 on the scalp.",
    "No heavy exercise or sweating for 5 days.",
    "No swimming, sauna or steam room for 28 days after your final session.",
    "No exfoliants on the scalp for a month.",
    "From day 4, cleanse gently and moisturise.",
    "Redness fades in about 2 days; small scabs and 'pigment shedding' from about day 3 "
    "are normal.",
)
