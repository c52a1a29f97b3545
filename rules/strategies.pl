/*  CryptoScalp strategy preconditions (SWI-Prolog).

    Loaded by reasoning/strategy_rules.py (PrologEngine) into a fresh module per load.
    Per decision the engine calls validate(+Facts, -Denials, -Trace):

      Facts    a list of Key=Value: strategy_id (atom), side (buy/sell), side_sign (1/-1),
               order_type (market/limit/stop_market), regime (trending/ranging/volatile/illiquid),
               volatility_regime (low/normal/high/extreme), breakout_confirmed (true/false),
               reduce_only (true/false), reverse (true/false), quantity (> 0, base units),
               position_qty (signed, base units)
      Denials  sorted reason codes, [] when the intent is consistent with its strategy
      Trace    check(Precondition, Observed, pass/fail, Reason) for every precondition
               checked, in order: the proof of the decision

    Reason codes are layer L5 (model): a strategy used outside the conditions it was
    designed and validated for is a model-risk failure, like a drifting model.
      L5.unknown_strategy                 no strategy/2 declaration for the intent's strategy
      L5.strategy_regime_mismatch         market regime outside the strategy's regimes
      L5.strategy_volatility_mismatch     volatility regime the strategy must not trade in
      L5.breakout_not_confirmed           breakout strategy without a confirmed breakout
      L5.strategy_order_type_mismatch     order type the strategy must not use

    A fact that is missing from Facts fails every precondition that reads it (fail closed).

    Reducing intents (reduce-only, or against the position for no more than its size and
    not a stop-and-reverse) always pass, whatever the strategy, even an unknown one:
    getting out of risk must never wait for a strategy's entry conditions.
*/

%!  strategy(?Id, ?Description)
strategy('baseline.ema_cross', "trend following on a fast/slow EMA cross").
strategy(market_making, "resting quotes on both sides, earning the spread").
strategy(mean_reversion, "fades moves away from a short-term mean").
strategy(momentum_breakout, "joins a confirmed breakout of the recent range").

%!  precondition(?Strategy, ?Check, ?Reason)
%   Every declared precondition of a strategy, with the reason code it denies with.

% EMA crosses whipsaw without a trend or a range to lean on; illiquid and volatile markets excluded.
precondition('baseline.ema_cross', regime_in([trending, ranging]), 'L5.strategy_regime_mismatch').
% Fading moves only works when prices oscillate around a mean.
precondition(mean_reversion, regime_in([ranging]), 'L5.strategy_regime_mismatch').
% A breakout strategy without a confirmed breakout is guessing.
precondition(momentum_breakout, breakout_confirmed, 'L5.breakout_not_confirmed').
% Breakouts in thin books are mostly liquidity holes that snap back.
precondition(momentum_breakout, regime_not_in([illiquid]), 'L5.strategy_regime_mismatch').
% Quotes get picked off in extreme volatility.
precondition(market_making, volatility_not_in([extreme]), 'L5.strategy_volatility_mismatch').
% A market maker provides liquidity: resting limit orders only, never market or stop orders.
precondition(market_making, order_type_in([limit]), 'L5.strategy_order_type_mismatch').

%!  observed(+Check, +Facts, -Value)
%   The fact a check reads; `missing` when Facts lacks it.
observed(regime_in(_), Facts, Value) :- fact(Facts, regime, Value).
observed(regime_not_in(_), Facts, Value) :- fact(Facts, regime, Value).
observed(volatility_not_in(_), Facts, Value) :- fact(Facts, volatility_regime, Value).
observed(order_type_in(_), Facts, Value) :- fact(Facts, order_type, Value).
observed(breakout_confirmed, Facts, Value) :- fact(Facts, breakout_confirmed, Value).

%!  holds(+Check, +Value)
holds(regime_in(Regimes), Regime) :- memberchk(Regime, Regimes).
holds(regime_not_in(Regimes), Regime) :- \+ memberchk(Regime, Regimes).
holds(volatility_not_in(Regimes), Regime) :- \+ memberchk(Regime, Regimes).
holds(order_type_in(Types), Type) :- memberchk(Type, Types).
holds(breakout_confirmed, true).

fact(Facts, Key, Value) :-
    (   memberchk(Key=Found, Facts)
    ->  Value = Found
    ;   Value = missing
    ).

%!  reducing(+Facts)
%   The intent only reduces risk.
reducing(Facts) :-
    fact(Facts, reduce_only, true),
    !.
reducing(Facts) :-
    fact(Facts, reverse, false),
    fact(Facts, side_sign, Sign),
    fact(Facts, position_qty, Position),
    fact(Facts, quantity, Quantity),
    number(Sign), number(Position), number(Quantity),
    Sign * Position < 0,
    Quantity =< abs(Position).

%!  outcome(+Check, +Value, -Outcome)
outcome(_, missing, fail) :- !.
outcome(Check, Value, pass) :- holds(Check, Value), !.
outcome(_, _, fail).

%!  validate(+Facts, -Denials, -Trace)
validate(Facts, [], [check(reducing_intent, true, pass, none)]) :-
    reducing(Facts),
    !.
validate(Facts, ['L5.unknown_strategy'], [check(known_strategy, Strategy, fail, 'L5.unknown_strategy')]) :-
    fact(Facts, strategy_id, Strategy),
    \+ strategy(Strategy, _),
    !.
validate(Facts, Denials, [check(known_strategy, Strategy, pass, none)|Checks]) :-
    fact(Facts, strategy_id, Strategy),
    findall(check(Check, Value, Outcome, Reason),
            ( precondition(Strategy, Check, Reason),
              observed(Check, Facts, Value),
              outcome(Check, Value, Outcome)
            ),
            Checks),
    findall(Reason, member(check(_, _, fail, Reason), Checks), Failed),
    sort(Failed, Denials).
