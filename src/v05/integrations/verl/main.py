"""``python -m v05.integrations.verl.main [--dry-run] [verl overrides]``: verl's PPO launcher
(``verl.trainer.main_ppo``) with V0.5's settings checked in the driver, before Ray starts or any model loads.

It composes the same config (verl's ``ppo_trainer.yaml``, or ``--config-name``), so every verl override works as
with ``python -m verl.trainer.main_ppo``. Before handing over to Hydra and verl it composes the config once
itself and checks the installed verl (:mod:`~v05.integrations.verl.compat`) and every ``+v05`` and V0.5-related
setting: a bad one ends the run with one red line naming the key, exit code 2, and nothing written to disk.
``--dry-run`` stops there and prints the resolved V0.5 part; ``--help`` lists V0.5's settings and estimators,
``--help-verl`` verl's own help. Hydra's run folder (``.hydra/``, the log) goes under the run's folder,
``trainer.default_local_dir``, not ``outputs/`` in the current folder.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import hydra
import verl
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from verl.trainer import main_ppo

from v05.baselines import get_estimator
from v05.integrations.verl.compat import LAUNCHER_MEMBERS, VERL_MEMBERS, check_verl
from v05.integrations.verl.config import SAMPLER_NAME, SAMPLER_PATH, TRAINER_MODE, V05VerlConfig, check_run
from v05.integrations.verl.estimator import our_name, verl_names
from v05._fields import field_docs

CONFIG_DIR = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
CONFIG_NAME = "ppo_trainer"
RUN_DIR = "hydra.run.dir=${trainer.default_local_dir}/hydra/${now:%Y-%m-%d}/${now:%H-%M-%S}"
"""Where Hydra writes ``.hydra/`` and its log: under the run's checkpoint folder (unless the user sets it)."""
PROG = "python -m v05.integrations.verl.main"


def check_launch(config) -> V05VerlConfig:
    """Everything :func:`check_run` checks, plus what only the launcher can see, because the ``v05_sync``
    trainer is not built otherwise: V0.5's prior-fused estimators and per-prompt rollout counts need that
    trainer (verl's own never passes a prior nor sets counts). Returns the checked ``+v05`` group."""
    v05 = check_run(config)
    name = our_name(str(config.algorithm.adv_estimator))
    mode = str(config.trainer.v1.trainer_mode)
    if mode == TRAINER_MODE:
        return v05
    if name is not None and get_estimator(name).uses_prior:
        raise ValueError(f"algorithm.adv_estimator={config.algorithm.adv_estimator} fuses a prior, which only the "
                         f"{TRAINER_MODE} trainer passes: set trainer.v1.trainer_mode={TRAINER_MODE} (got {mode!r})")
    if v05.rollouts.mode != "fixed":
        raise ValueError(f"v05.rollouts.mode={v05.rollouts.mode} sets per-prompt rollout counts, which only the "
                         f"{TRAINER_MODE} trainer does: set trainer.v1.trainer_mode={TRAINER_MODE} (got {mode!r})")
    return v05


# -- the V0.5 part of a config ----------------------------------------------------------------------------


def v05_part(config, v05: V05VerlConfig) -> dict:
    """The V0.5-related settings of a composed verl config, resolved: the checked ``+v05`` group (defaults
    filled in) and the verl settings it depends on."""
    sampler = config.trainer.v1.sampler.get("custom_sampler", None) or {}
    filter_groups = config.algorithm.get("filter_groups", None) or {}
    adv = str(config.algorithm.adv_estimator)
    name = our_name(adv)
    return {
        "algorithm": {"adv_estimator": adv, "v05_estimator": name and get_estimator(name).name,
                      "use_kl_in_reward": bool(config.algorithm.get("use_kl_in_reward", False)),
                      "filter_groups.enable": bool(filter_groups.get("enable", False))},
        "actor_rollout_ref.rollout.n": int(config.actor_rollout_ref.rollout.n),
        "trainer.v1.trainer_mode": str(config.trainer.v1.trainer_mode),
        "trainer.v1.sampler.custom_sampler": {"path": sampler.get("path"), "name": sampler.get("name")},
        "v05": _plain(dataclasses.asdict(v05)),
    }


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return list(value) if isinstance(value, tuple) else value


def verdict(config, v05: V05VerlConfig) -> str:
    """One line saying what the checked config will run."""
    adv = str(config.algorithm.adv_estimator)
    name = our_name(adv)
    estimator = f"{adv} (v05.baselines {get_estimator(name).name!r})" if name else f"{adv} (verl's own)"
    r = v05.rollouts
    if r.mode == "osla" and r.rule != "osla":
        rollouts = f"rule {r.rule} {r.plan_rule()}"
    elif r.mode == "osla":
        rollouts = (f"osla k_init {r.osla.k_init} -> k_max {r.osla.k_max}, rule {r.osla.rule}, "
                    f"max_rounds {r.osla.max_rounds}")
    elif r.mode == "static":
        rollouts = f"static counts from column {r.n_key!r}"
    else:
        rollouts = f"fixed rollout.n={config.actor_rollout_ref.rollout.n}"
    return f"verl config OK: estimator {estimator}, rollouts {rollouts}, trainer {config.trainer.v1.trainer_mode}"


# -- --help ---------------------------------------------------------------------------------------------


def _settings_lines(cls, default, prefix: str) -> list[str]:
    lines = []
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        value = getattr(default, f.name)
        key = f"{prefix}.{f.name}"
        if dataclasses.is_dataclass(value):
            lines += _settings_lines(type(value), value, key)
            continue
        shown = "null" if value is None else ("{}" if value == {} else value)
        doc = " ".join(docs.get(f.name, "").split())
        lines.append(f"  +{key}{'.*' if isinstance(value, dict) else ''}={shown}\n      {doc}".rstrip())
    return lines


def _estimator_lines() -> list[str]:
    lines = []
    names = verl_names()
    for key in sorted(names, key=lambda k: (not names[k].startswith("v05"), k)):  # V0.5's own first
        name = names[key]
        est = get_estimator(name)
        summary = ((est.fn.__doc__ or "").strip().splitlines() or [""])[0]
        tags = [f"= {est.name}" if est.name != name else "", "prior" if est.uses_prior else "",
                "needs +v05.prior_var_key" if est.needs_prior_var else "",
                ", ".join(f"+v05.options.{o}={'null' if v is None else v}" for o, v in est.defaults.items())]
        tags = "; ".join(t for t in tags if t)
        lines.append(f"  {key:<22} {summary}{f' [{tags}]' if tags else ''}")
    return lines


def help_text() -> str:
    """``--help``: V0.5's own settings first, then where verl's are."""
    return "\n".join([
        f"usage: {PROG} [--dry-run] [--config-name NAME] [verl overrides ...]",
        "",
        "verl's PPO launcher (verl.trainer.main_ppo, verl 0.9.1) with V0.5's settings checked before Ray starts.",
        "Every verl override works as with python -m verl.trainer.main_ppo; V0.5's settings are the +v05 group.",
        "",
        "options:",
        "  --help, -h     this text",
        "  --dry-run      compose verl's config, check every +v05 and V0.5-related setting, print the resolved",
        "                 V0.5 part and exit 0 (no Ray, no model, nothing written)",
        "  --help-verl    verl's own help: Hydra's text and verl's whole config",
        "",
        "V0.5's estimators (algorithm.adv_estimator=NAME):",
        *_estimator_lines(),
        "",
        "V0.5's settings (+v05.KEY=VALUE, all optional; default shown):",
        *_settings_lines(V05VerlConfig, V05VerlConfig(), "v05"),
        "",
        "verl settings V0.5 needs:",
        f"  trainer.v1.trainer_mode={TRAINER_MODE}     for the estimators marked 'prior' (verl's trainer passes none)",
        f"  trainer.v1.sampler.custom_sampler.path={SAMPLER_PATH}",
        f"  trainer.v1.sampler.custom_sampler.name={SAMPLER_NAME}     with +v05.rollouts.mode=osla",
        "  algorithm.use_kl_in_reward=false     with V0.5's estimators (a KL term takes rewards out of +v05.scale)",
        "",
        "example:",
        f"  {PROG} --dry-run algorithm.adv_estimator=v05 trainer.v1.trainer_mode={TRAINER_MODE} \\",
        f"      trainer.v1.sampler.custom_sampler.path={SAMPLER_PATH} \\",
        f"      trainer.v1.sampler.custom_sampler.name={SAMPLER_NAME} +v05.rollouts.mode=osla",
        "",
        "docs/verl.md is the guide.",
    ])


# -- the command ----------------------------------------------------------------------------------------


def _fail(message: str, code: int = 2):
    """One red line on stderr, then exit (no traceback)."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]error:[/bold red] {escape(' '.join(str(message).split()))}")
    sys.exit(code)


def _split_args(argv: list[str]) -> tuple[bool, str, list[str], list[str]]:
    """(--dry-run given, the config name, the overrides, any other Hydra flag with what follows it)."""
    dry_run, config_name, overrides, other = False, CONFIG_NAME, [], []
    args = iter(argv)
    for arg in args:
        if arg == "--dry-run":
            dry_run = True
        elif arg in ("--config-name", "-cn"):
            config_name = next(args, "")
        elif arg.startswith("--config-name="):
            config_name = arg.split("=", 1)[1]
        elif arg.startswith("-") or other:  # Hydra's own flags and what follows them
            other.append(arg)
        else:
            overrides.append(arg)
    return dry_run, config_name, overrides, other


def compose_config(overrides: list[str], config_name: str = CONFIG_NAME):
    """verl's config composed with ``overrides`` through Hydra's compose API (nothing written to disk)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose(config_name=config_name, overrides=overrides)


def precheck(overrides: list[str], config_name: str = CONFIG_NAME):
    """Check the installed verl, compose the config and check it; a problem exits with one red line."""
    try:
        check_verl(VERL_MEMBERS + LAUNCHER_MEMBERS)
    except ImportError as e:
        _fail(str(e), code=1)
    try:
        config = compose_config(overrides, config_name)
    except (HydraException, OmegaConfBaseException) as e:
        _fail(f"verl's config: {e}")
    try:
        return config, check_launch(config)
    except (TypeError, ValueError) as e:
        _fail(str(e))


@hydra.main(config_path=CONFIG_DIR, config_name=CONFIG_NAME, version_base=None)
def main(config) -> None:
    """Check the +v05 group (again: Hydra flags may have changed the config), then run verl's own
    ``main_ppo.main`` body."""
    try:
        check_launch(config)
    except (TypeError, ValueError) as e:
        _fail(str(e))
    main_ppo.main.__wrapped__(config)


def cli(argv: list[str] | None = None) -> None:
    """The command: ``--help``, ``--help-verl``, ``--dry-run``, or check then run."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--help" in argv or "-h" in argv:
        print(help_text())
        return
    if "--help-verl" in argv:
        sys.argv = [sys.argv[0], "--help", *[a for a in argv if a != "--help-verl"]]
        main()
        return
    dry_run, config_name, overrides, other = _split_args(argv)
    if other and dry_run:
        _fail(f"--dry-run takes verl overrides and --config-name only; got {other}")
    if other:  # Hydra's own flags (--cfg job, -m...) change what runs: Hydra gets the line as given, main() checks
        sys.argv = [sys.argv[0], *argv]
        main()
        return
    config, v05 = precheck(overrides, config_name)
    if dry_run:
        print("# the V0.5 part of the composed verl config, resolved and checked")
        print(OmegaConf.to_yaml(v05_part(config, v05)), end="")
        print(f"{verdict(config, v05)} (dry run: nothing started)")
        return
    if not any(a.startswith(("hydra.run.dir=", "++hydra.run.dir=")) for a in overrides):
        overrides.append(RUN_DIR)
    sys.argv = [sys.argv[0], f"--config-name={config_name}", *overrides]
    main()


if __name__ == "__main__":
    cli()
