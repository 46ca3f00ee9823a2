"""`captchagen adapt`: read a site's captchas from an unlabelled pool. plan (the stages as data and their
inputs), state (what adapt made and finished), runner (one way to run a step's command), pipeline (check,
then run)."""
