% Test-only rules: validate/3 denies with L5.overlap if another validate/3 is running at the same
% time (flag/3 is global to the Prolog process), and holds the section for 2 ms to give overlaps a chance.
validate(_, Denials, []) :-
    flag(cryptoscalp_test_active, Active, Active + 1),
    sleep(0.002),
    flag(cryptoscalp_test_active, Now, Now - 1),
    (   Active =:= 0, Now =:= 1
    ->  Denials = []
    ;   Denials = ['L5.overlap']
    ).
