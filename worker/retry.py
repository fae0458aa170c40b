"""A way forward after a failed gate: one retry with an escalated budget, then a message that says what to change.

A run whose gate fails only on checks that fail because it did too little (the forgotten side:
forget-set drops, membership AUC above chance, class still recognised) is run once more from the
same base with ``ESCALATION`` times the step budget; the stop check still ends it as soon as the probe
verdict holds. A run that failed on the retain side or on over-forgetting is not retried: the same
seed would retrace the same path and more steps only make those worse.
"""

from __future__ import annotations

import time

from worker.evaluation import make_judge
from worker.gate import GateResult, check_gate
from worker.inputs import JobInputs
from worker.probe import Probe, Split, probe_every
from worker.unlearn import EncoderL2Config, run_unlearning
from worker.unlearn.methods import list_methods, run_method

MAX_ATTEMPTS = 2
ESCALATION = 2


class Attempts:
    """Unlearn with a probe that stops the run when done; judge; retry once with an escalated budget if that may help."""

    def __init__(self, base, forget, retain, split: Split, features, *, inputs: JobInputs, params, targets,
                 on_step, seed: int) -> None:  # fmt: skip
        started = time.perf_counter()
        self.base, self.forget, self.retain, self.inputs = base, forget, retain, inputs
        self.params, self.targets, self.on_step = params, targets, on_step
        self.final = make_judge(base, split.final, features, seed=seed)
        self.probe = make_judge(base, split.probe, features, seed=seed, probe=True)
        self.attempts: list[dict] = []
        self.evaluate_s = time.perf_counter() - started

    def until_done(self, config: EncoderL2Config):
        while True:
            result, judgement, gate = self.once(config)
            if gate.publishable or len(self.attempts) == MAX_ATTEMPTS or not gate.more_steps_may_help:
                return result, judgement, gate
            config = escalate(config, result.budget)

    def once(self, config: EncoderL2Config):
        budget = config.steps
        probe = Probe(self.probe, self.inputs.gate_overrides, every=probe_every(budget))
        if self.targets is not None:  # encoder-L2 on the version's cached teacher targets
            result = run_unlearning(self.base, self.forget, self.retain, config, self.on_step, targets=self.targets,
                                    retain_is_proxy=True, stop=probe.check())  # fmt: skip
        else:
            result = run_method(self.inputs.method, self.base, self.forget, self.retain, config, self.on_step,
                                params=self.params, stop=probe.check())  # fmt: skip
        started = time.perf_counter()
        judgement = self.final(result.adapter)
        gate = check_gate(judgement, self.inputs.gate_overrides)
        self.evaluate_s += time.perf_counter() - started
        self.attempts.append({
            "budget": result.budget, "steps": result.steps, "stopped_early": result.stopped_early,
            "probe_every": probe.every, "steps_to_verdict": probe.steps_to_verdict, "probes": probe.history,
            "verdict": gate.verdict, "failed_checks": [c["name"] for c in gate.failures],
        })  # fmt: skip
        return result, judgement, gate


def escalate(config: EncoderL2Config, budget: int) -> EncoderL2Config:
    """``config`` with ``ESCALATION`` x ``budget`` steps."""
    return config.replace(steps=budget * ESCALATION)


def gate_failure_message(gate: GateResult, attempts: list[dict]) -> str:
    """The job's error text: what failed, on which budgets, and what the officer can change."""
    failed = ", ".join(f"{c['name']} (value {c['value']}, threshold {c['threshold']})" for c in gate.failures)
    budgets = ", ".join(f"{a['budget']} (ran {a['steps']})" for a in attempts)
    lines = [f"gate failed: {failed}.", f"Attempts: {len(attempts)}, step budgets {budgets}."]
    if len(attempts) == 1 and not gate.more_steps_may_help:
        lines.append("Not retried with a larger budget: the failing checks guard the retain side or against "
                     "over-forgetting, which more steps would make worse.")  # fmt: skip
    lines.append("What can be changed: " + "; ".join(remedies(gate)) + ".")
    return " ".join(lines)


def remedies(gate: GateResult) -> list[str]:
    """What an officer (or the model's admin) can change, for the checks that failed."""
    sides = {c["protects"] for c in gate.failures}
    out = []
    if "forgotten" in sides:
        out.append("a larger step budget (request config steps, or the model's unlearn_defaults) "
                   "or a larger lr or alpha")  # fmt: skip
    if sides & {"not_over_forgotten", "retain"}:
        out.append("a smaller step budget, lr or alpha")
    out.append(f"another method (request 'method', one of {', '.join(list_methods())})")
    out.append("the model's gate_thresholds (an admin may relax a check or set it to null; the verdict then "
               "lists it as unevaluated), after which the request can be filed again and approved")  # fmt: skip
    return out
