"""The demo's data, for `seed_demo`: its cases and its past.

- `texts`: the invented people, messages and companies the cases are made of;
- `cases`: the three example categories and a deterministic stream of their cases (`demo_cases`, `make_case`);
- `stories`: what the demo's past looks like: arrivals, how its people work, each category's story;
- `simulation`: the discrete-event simulation of the people who work those days through the real services;
- `history`: the past written with the clock moved back, in one transaction (`write_history`).

Nothing is imported here: `seed_demo` imports the module it needs.
"""
