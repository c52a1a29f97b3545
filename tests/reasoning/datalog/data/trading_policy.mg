# A realistic pre-trade policy: the shape of rules/policy.mg, used by the incremental tests and the bench.
# Base facts (market, account, positions, limits) come from tests/reasoning/datalog/policy_world.py;
# an intent adds intent(I, Symbol, Side, Qty, Leverage, Model) and optionally intent_limit_price(I, P).

Decl intent(I, S, Side, Qty, Leverage, Model) bound [/name, /name, /name, /number, /number, /name].
Decl position(S, Qty) descr [doc("Signed position quantity per symbol.")] bound [/name, /number].
Decl mark_price(S, P) bound [/name, /float64].

side_sign(/buy, 1).
side_sign(/sell, -1).

# --- market and account state (materialised once per market update) ---
has_position(S) :- position(S, Q), Q != 0.
long(S) :- position(S, Q), Q > 0.
short(S) :- position(S, Q), Q < 0.
notional(S, N) :- position(S, Q), mark_price(S, P), N = fn:abs(fn:mult(Q, P)).
margin_held(S, M) :- notional(S, N), leverage_setting(S, L), M = fn:div(N, L).
gross_exposure(E) :- notional(_, N) |> do fn:group_by(), let E = fn:sum(N).
margin_used(M) :- margin_held(_, H) |> do fn:group_by(), let M = fn:sum(H).
margin_use(U) :- margin_used(M), equity(E), U = fn:div(M, E).
sector_exposure(Sec, E) :- notional(S, N), symbol(S, Sec) |> do fn:group_by(Sec), let E = fn:sum(N).
open_positions(C) :- has_position(S) |> do fn:group_by(), let C = fn:count().
largest_position(N) :- notional(_, V) |> do fn:group_by(), let N = fn:max(V).
correlated_with(A, B) :- correlated(A, B).
correlated_with(A, B) :- correlated(B, A).
cluster(A, B) :- correlated_with(A, B).
cluster(A, C) :- cluster(A, B), correlated_with(B, C), A != C.
cluster_positions(S, C) :- cluster(S, T), has_position(T) |> do fn:group_by(S), let C = fn:count().
stale(S) :- data_age_ms(S, A), max_data_age_ms(M), A > M.
venue_down(S) :- listed(S, V), !venue_healthy(V).
high_volatility(S) :- volatility(S, V), regime(S, R), vol_limit(R, L), V > L.
crisis(S) :- regime(S, /crisis).
tradable(S) :- symbol(S, _), !restricted(S), !stale(S), !venue_down(S).
model_ok(M) :- model(M), model_drift(M, D), max_model_drift(X), D <= X.
daily_loss_breached() :- daily_pnl(P), daily_loss_limit(L), P < L.
margin_stressed() :- margin_use(U), max_margin_use(X), U > X.

# --- the intent and what it would do ---
intent_symbol(I, S) :- intent(I, S, _, _, _, _).
signed_qty(I, D) :- intent(I, _, Side, Q, _, _), side_sign(Side, Sign), D = fn:mult(Sign, Q).
position_after(I, A) :- intent(I, S, _, _, _, _), position(S, Q0), signed_qty(I, D), A = fn:plus(Q0, D).
position_after(I, D) :- intent(I, S, _, _, _, _), !position(S, _), signed_qty(I, D).
risk_reducing(I) :- intent(I, S, _, _, _, _), position(S, Q0), position_after(I, A),
    fn:abs(A) < fn:abs(Q0), fn:mult(A, Q0) >= 0.
intent_notional(I, N) :- intent(I, S, _, Q, _, _), mark_price(S, P), N = fn:mult(Q, P).
notional_after(I, N) :- intent_symbol(I, S), position_after(I, A), mark_price(S, P), N = fn:abs(fn:mult(A, P)).
exposure_after(I, E) :- intent_notional(I, N), gross_exposure(G), E = fn:plus(G, N).
sector_after(I, E) :- intent_symbol(I, S), symbol(S, Sec), sector_exposure(Sec, X), intent_notional(I, N),
    E = fn:plus(X, N).
sector_after(I, N) :- intent_symbol(I, S), symbol(S, Sec), !sector_exposure(Sec, _), intent_notional(I, N).
growing(I) :- intent_symbol(I, _), !risk_reducing(I).

# --- denials, each with a stable reason code ---
deny(I, /L7.unknown_symbol) :- intent_symbol(I, S), !symbol(S, _).
deny(I, /L7.restricted_symbol) :- intent_symbol(I, S), restricted(S).
deny(I, /L6.stale_data) :- intent_symbol(I, S), stale(S).
deny(I, /L6.venue_down) :- intent_symbol(I, S), venue_down(S).
deny(I, /L5.model_unhealthy) :- intent(I, _, _, _, _, M), !model_ok(M).
deny(I, /L1.max_leverage) :- intent(I, S, _, _, Lev, _), regime(S, R), max_leverage(R, Max), Lev > Max, growing(I).
deny(I, /L1.max_notional) :- notional_after(I, N), intent_symbol(I, S), max_notional(S, Max), N > Max, growing(I).
deny(I, /L2.gross_exposure) :- exposure_after(I, E), gross_limit(L), E > L, growing(I).
deny(I, /L2.sector_exposure) :- sector_after(I, E), intent_symbol(I, S), symbol(S, Sec), sector_limit(Sec, L),
    E > L, growing(I).
deny(I, /L2.correlated_crowding) :- intent_symbol(I, S), cluster_positions(S, C), max_cluster_positions(M),
    C >= M, !has_position(S), growing(I).
deny(I, /L3.daily_loss) :- growing(I), daily_loss_breached().
deny(I, /L3.margin_use) :- growing(I), margin_stressed().
deny(I, /L4.kill_switch) :- growing(I), kill_switch(/on).
deny(I, /L4.crisis_regime) :- intent_symbol(I, S), crisis(S), growing(I).
deny(I, /L4.high_volatility) :- intent_symbol(I, S), high_volatility(S), growing(I).
deny(I, /L7.price_collar) :- intent_limit_price(I, LP), intent_symbol(I, S), mark_price(S, P), collar(C),
    fn:abs(fn:minus(LP, P)) > fn:mult(P, C).
deny(I, /L7.not_tradable) :- intent_symbol(I, S), symbol(S, _), !tradable(S), !risk_reducing(I).

denied(I) :- deny(I, _).
deny_count(I, N) :- deny(I, R) |> do fn:group_by(I), let N = fn:count().
admit(I) :- intent_symbol(I, _), !denied(I).
