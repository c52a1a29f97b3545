% Test-only rules: validate/3 blocks in sleep/1 for 0.5 s (longer than the caller's budget).
validate(_, [], []) :- sleep(0.5).
