;;; CryptoScalp expert rules: regime and microstructure heuristics (CLIPS 6.4).
;;;
;;; Loaded by reasoning/expert.py (ClipsEngine). Per decision the engine resets, asserts one
;;; fact of each template below from the decision context and the intent, runs, and collects
;;; every `deny` fact: its `reason` is a stable reason code `L<layer>.<name>`. The proof lists
;;; every rule that fired with the facts it matched (the engine watches rule firings).
;;;
;;; House rule: a rule that only exists to stop risk from growing matches
;;; `(intent-effect (kind opening))`, so it can never deny an intent that closes or shrinks a
;;; position. A rule that denies reducing intents too must say why in its comment.
;;;
;;; Units as in reasoning/context.py: prices in USDT, fractions as plain ratios (0.03 = 3 %),
;;; spreads in basis points, times in milliseconds. Booleans are the symbols TRUE / FALSE.

;;; ------------------------------------------------------------------ thresholds
;;; Risk officers tune these; each is used by the rule named beside it.

(defglobal
  ?*extreme-funding-rate* = 0.001      ; funding-against-direction: 0.10 % per interval, 10x the usual 0.01 %
  ?*price-shock* = 0.03                ; price-shock-pause: |last bar change| of 3 %
  ?*max-taker-spread-bps* = 10.0       ; wide-spread-no-taker-entries
  ?*max-venue-error-rate* = 0.05       ; venue-degraded-no-entries: 5 % failed requests
  ?*max-venue-latency-ms* = 500.0      ; venue-degraded-no-entries
  ?*min-fallback-confidence* = 0.6)    ; fallback-model-needs-confidence

;;; ------------------------------------------------------------------ facts

(deftemplate intent
  (slot id (type STRING))
  (slot strategy (type STRING))
  (slot side (type SYMBOL) (allowed-symbols buy sell))
  (slot sign (type INTEGER) (allowed-integers -1 1))
  (slot order-type (type SYMBOL) (allowed-symbols market limit stop_market))
  (slot quantity (type FLOAT))                          ; of this order, base units, > 0
  (slot reduce-only (type SYMBOL) (allowed-symbols TRUE FALSE))
  (slot reverse (type SYMBOL) (allowed-symbols TRUE FALSE))
  (slot stop-loss (type FLOAT))                         ; 0.0 when the intent has none
  (slot confidence (type FLOAT))                        ; -1.0 when the intent states none
  (slot model-id (type STRING)))

(deftemplate market
  (slot symbol (type STRING))
  (slot mark-price (type FLOAT))
  (slot atr (type FLOAT))
  (slot volatility (type FLOAT))
  (slot volatility-regime (type SYMBOL) (allowed-symbols low normal high extreme))
  (slot regime (type SYMBOL) (allowed-symbols trending ranging volatile illiquid))
  (slot spread-bps (type FLOAT))
  (slot spread-widening (type SYMBOL) (allowed-symbols TRUE FALSE))
  (slot breakout-confirmed (type SYMBOL) (allowed-symbols TRUE FALSE))
  (slot price-change (type FLOAT))                      ; over the last bar, fraction
  (slot funding-rate (type FLOAT))
  (slot data-age-ms (type INTEGER))
  (multislot data-quality-flags (type STRING)))

(deftemplate account
  (slot equity (type FLOAT))
  (slot available-balance (type FLOAT))
  (slot daily-pnl (type FLOAT))
  (slot drawdown (type FLOAT))
  (slot consecutive-losses (type INTEGER))
  (slot open-orders (type INTEGER))
  (slot orders-last-second (type INTEGER)))

(deftemplate position
  (slot quantity (type FLOAT))                          ; signed, > 0 long
  (slot entry-price (type FLOAT))
  (slot leverage (type FLOAT)))

(deftemplate model
  (slot model-id (type STRING))
  (slot drift-detected (type SYMBOL) (allowed-symbols TRUE FALSE))
  (slot calibration-error (type FLOAT))
  (slot is-fallback (type SYMBOL) (allowed-symbols TRUE FALSE)))

(deftemplate venue
  (slot name (type STRING))
  (slot healthy (type SYMBOL) (allowed-symbols TRUE FALSE))
  (slot error-rate (type FLOAT))
  (slot latency-ms (type FLOAT))
  (slot rate-limit-used (type FLOAT)))

;;; Derived by classify-intent-effect: does the order grow risk or only reduce it?
(deftemplate intent-effect
  (slot kind (type SYMBOL) (allowed-symbols opening reducing)))

;;; The engine's output: one fact per objection.
(deftemplate deny
  (slot reason (type SYMBOL)))

;;; ------------------------------------------------------------------ classification

;;; An order reduces risk when it is flagged reduce-only, or when it trades against the open
;;; position for no more than its size and is not a stop-and-reverse (which opens the other side).
(deffunction risk-effect (?reduce-only ?reverse ?sign ?quantity ?position)
  (if (eq ?reduce-only TRUE) then (return reducing))
  (if (and (eq ?reverse FALSE)
           (< (* ?sign ?position) 0.0)
           (<= ?quantity (abs ?position)))
   then (return reducing))
  (return opening))

;;; classify-intent-effect: every decision gets exactly one intent-effect fact.
(defrule classify-intent-effect
  (intent (reduce-only ?reduce-only) (reverse ?reverse) (sign ?sign) (quantity ?quantity))
  (position (quantity ?position))
  =>
  (assert (intent-effect (kind (risk-effect ?reduce-only ?reverse ?sign ?quantity ?position)))))

;;; ------------------------------------------------------------------ L1 position

;;; funding-against-direction: when the funding rate is extreme against the side of the order
;;; (longs pay positive funding, shorts pay negative), opening or growing a position in that
;;; direction buys an expensive carry that scalping cannot earn back. Reductions pass.
(defrule funding-against-direction
  (intent-effect (kind opening))
  (intent (sign ?sign))
  (market (funding-rate ?rate&:(>= (* ?sign ?rate) ?*extreme-funding-rate*)))
  =>
  (assert (deny (reason L1.funding_against_direction))))

;;; stop-loss-on-wrong-side: a long's stop must lie below the mark price and a short's above it;
;;; a stop on the wrong side triggers at once, so the stated risk of the trade is meaningless.
;;; Only orders that open risk carry a protective stop; reductions pass.
(defrule stop-loss-on-wrong-side
  (intent-effect (kind opening))
  (intent (sign ?sign) (stop-loss ?stop&:(> ?stop 0.0)))
  (market (mark-price ?mark&:(<= (* ?sign (- ?mark ?stop)) 0.0)))
  =>
  (assert (deny (reason L1.stop_loss_wrong_side))))

;;; reduce-only-nothing-to-reduce: EXCEPTION to the house rule, it denies an intent flagged
;;; reduce-only. Such an intent is inconsistent when there is no position on the other side to
;;; reduce (flat, or the order has the position's own side): it reduces no risk, the venue would
;;; reject it, and it is the mark of a strategy that lost track of its position.
(defrule reduce-only-nothing-to-reduce
  (intent (reduce-only TRUE) (sign ?sign))
  (position (quantity ?position&:(>= (* ?sign ?position) 0.0)))
  =>
  (assert (deny (reason L1.reduce_only_without_position))))

;;; ------------------------------------------------------------------ L4 systemic

;;; extreme-volatility-no-quotes: in an extreme volatility regime with the spread widening, a
;;; market maker's resting quotes are picked off by informed flow; no new market-making quotes
;;; that add inventory. Quotes that work the inventory down pass.
(defrule extreme-volatility-no-quotes
  (intent-effect (kind opening))
  (intent (strategy "market_making"))
  (market (volatility-regime extreme) (spread-widening TRUE))
  =>
  (assert (deny (reason L4.extreme_volatility_no_quotes))))

;;; illiquid-no-market-entries: in an illiquid regime a market (or stop-market) order walks the
;;; book, so its fill price is unknowable; no market orders that open risk. A market order that
;;; closes risk passes: getting out matters more than the price.
(defrule illiquid-no-market-entries
  (intent-effect (kind opening))
  (intent (order-type market|stop_market))
  (market (regime illiquid))
  =>
  (assert (deny (reason L4.illiquid_market_entry))))

;;; price-shock-pause: a last-bar move of at least ?*price-shock* (either way) is a shock; signals
;;; computed on the bars before it are stale, so new entries pause until the next bar. Exits pass.
(defrule price-shock-pause
  (intent-effect (kind opening))
  (market (price-change ?change&:(>= (abs ?change) ?*price-shock*)))
  =>
  (assert (deny (reason L4.price_shock_pause))))

;;; wide-spread-no-taker-entries: a taker entry pays half the spread at once; above
;;; ?*max-taker-spread-bps* that eats a scalper's whole expected edge. Limit orders and
;;; reductions pass.
(defrule wide-spread-no-taker-entries
  (intent-effect (kind opening))
  (intent (order-type market|stop_market))
  (market (spread-bps ?spread&:(> ?spread ?*max-taker-spread-bps*)))
  =>
  (assert (deny (reason L4.wide_spread_taker_entry))))

;;; ------------------------------------------------------------------ L5 model

;;; fallback-model-needs-confidence: while the fallback model serves, only entries it states a
;;; confidence of at least ?*min-fallback-confidence* for are taken; an intent without a
;;; confidence (-1.0) counts as unconfident. Reductions pass.
(defrule fallback-model-needs-confidence
  (intent-effect (kind opening))
  (model (is-fallback TRUE))
  (intent (confidence ?confidence&:(< ?confidence ?*min-fallback-confidence*)))
  =>
  (assert (deny (reason L5.fallback_low_confidence))))

;;; ------------------------------------------------------------------ L6 operational

;;; data-quality-flags-no-entries: any data-quality flag on the current window (a gap, a
;;; forward-filled bar, ...) means the features behind the intent may be wrong; no entries.
;;; A reduction does not depend on those features, so it passes.
(defrule data-quality-flags-no-entries
  (intent-effect (kind opening))
  (market (data-quality-flags ? $?))
  =>
  (assert (deny (reason L6.data_quality_flags))))

;;; venue-degraded-no-entries: a venue failing more than ?*max-venue-error-rate* of requests or
;;; slower than ?*max-venue-latency-ms* (p99) cannot be trusted to fill or cancel in time; no new
;;; risk there. Reductions pass (the kill switch, not this rule, handles a dead venue).
(defrule venue-degraded-no-entries
  (intent-effect (kind opening))
  (venue (error-rate ?errors) (latency-ms ?latency))
  (test (or (> ?errors ?*max-venue-error-rate*) (> ?latency ?*max-venue-latency-ms*)))
  =>
  (assert (deny (reason L6.venue_degraded))))
