% Test-only rules: validate/3 denies with L5.overlap if another validate/3 is running at the same
% time, and holds the section for 2 ms to give overlaps a chance. The `running` fact it asserts into
% its module is seen by every thread (clause/2, not a call: `running` is not defined until asserted).
validate(_, Denials, []) :-
    (   clause(running, true)
    ->  Overlapped = true
    ;   Overlapped = false
    ),
    assertz(running),
    sleep(0.002),
    retract(running),
    (   Overlapped == false, \+ clause(running, true)
    ->  Denials = []
    ;   Denials = ['L5.overlap']
    ).
