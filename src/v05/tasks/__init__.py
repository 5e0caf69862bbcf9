"""Tasks and rewards shared by the CPU engine, the TRL and verl integrations and ``v05 eval``: the math
benchmarks and their math-verify reward (:mod:`v05.tasks.math_reward`), and RL^V's verification prompt for
chat models (:mod:`v05.tasks.verifier_chat`).

They sit below the engine (:mod:`v05.rl`) and import nothing above ``v05.data``, so a trainer plug-in or a
reward function uses them without loading the engine.
"""
