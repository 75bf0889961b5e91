"""The demo's data, for `seed_demo`: its cases and its past.

- `texts`: the invented people, messages and companies the cases are made of;
- `cases`: the three example categories and a deterministic stream of their cases (`demo_cases`, `make_case`).

Nothing is imported here: `seed_demo` imports the module it needs.
"""
