# CryptoScalp policy knowledge base (Mangle-syntax Datalog).
#
# Derives deny(Intent, Reason) and admit(Intent). Reasons are stable reason codes
# "L<layer>.<name>". The facts this file may use are listed in reasoning/policy.py.
# Every rule exempts intents that only reduce risk (reducing(I)) unless it says why not.
# Microstructure and data-quality heuristics live in expert.clp, strategy preconditions in
# strategies.pl, numeric limits in limits.toml.

Decl intent(I, Symbol, Side, Strategy) bound [/string, /string, /name, /string].
Decl deny(I, Reason) bound [/string, /string].

# ---------------------------------------------------------------- L7 compliance
# Symbols the desk may not open risk in (delisting, legal review, sanctions screening).
restricted_symbol("LUNA/USDT:USDT").
restricted_symbol("FTT/USDT:USDT").
restricted_symbol("USTC/USDT:USDT").

deny(I, "L7.restricted_symbol") :- intent(I, S, _, _), restricted_symbol(S), !reducing(I).

# Only symbols the desk has approved (listing, liquidity and legal review) may be traded at all.
approved_symbol("BTC/USDT:USDT").
approved_symbol("ETH/USDT:USDT").
approved_symbol("SOL/USDT:USDT").
approved_symbol("BNB/USDT:USDT").
approved_symbol("XRP/USDT:USDT").
approved_symbol("DOGE/USDT:USDT").
approved_symbol("ADA/USDT:USDT").
approved_symbol("DOT/USDT:USDT").
approved_symbol("LTC/USDT:USDT").

deny(I, "L7.unapproved_symbol") :- intent(I, S, _, _), !approved_symbol(S), !restricted_symbol(S), !reducing(I).

# Jurisdictions where the account may not trade perpetuals (Binance's own restricted
# list for derivatives includes the US, the UK for retail, and sanctioned countries).
# The region comes from the account configuration.
restricted_region(/us).
restricted_region(/gb).
restricted_region(/kp).
restricted_region(/ir).
restricted_region(/cu).
restricted_region(/sy).

deny(I, "L7.restricted_region") :- intent(I, _, _, _), account_region(R), restricted_region(R), !reducing(I).

# ---------------------------------------------------------------- L5 model
# Only models the model-risk committee approved may propose trades.
approved_model("gbm-7").
approved_model("fallback-lr").

deny(I, "L5.unapproved_model") :- intent_model(I, M), !approved_model(M), !reducing(I).

# A model whose drift detector fired may not open risk until it is retrained.
deny(I, "L5.model_drift") :- intent_model(I, M), model_drift(M), !reducing(I).

# ---------------------------------------------------------------- L6 operational
deny(I, "L6.venue_unhealthy") :- intent(I, _, _, _), venue(_, /unhealthy), !reducing(I).


# ---------------------------------------------------------------- verdict
denied(I) :- deny(I, _).
admit(I) :- intent(I, _, _, _), !denied(I).
