% Test-only rules: validate/3 never terminates (the engine's inference budget must stop it).
validate(Facts, Denials, Trace) :- spin(Facts), Denials = [], Trace = [].
spin(Facts) :- spin(Facts).
