"""The reasoning layer: engines that must admit a trade intent, with a proof, before it is sized and sent.

Only the Datalog engine (`reasoning.datalog`) lives here so far.
"""
