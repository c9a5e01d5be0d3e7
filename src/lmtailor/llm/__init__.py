"""LLM backends behind one small contract, with a persistent response cache and usage accounting.

Tasks (judge, synth, score, every evaluation) talk to an `LLM` client; they never know which backend answers.
"""
