"""``ValueModel``: predict a policy's pass rate on unseen prompts, with a variance, from in-context history.

The head is the item-response model of :mod:`v05.value.irt`: ``logit p = ability - difficulty``. The
ability of the policy is read from its context (no parameter update); a prompt's difficulty comes from its
outcome history (other policies or earlier checkpoints) when it has one, and from its text otherwise
(meta-trained weights over sentence embeddings). The predictive variance adds the difficulty's posterior
variance (``tau2`` when cold, shrinking with history), the ability's, and the policy-by-prompt interaction
``s2``, and is mapped to the pass-rate scale exactly (logit-normal moments).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from v05._validation import as_1d, check_bool, check_number, check_positive_int
from v05.value import store
from v05.value.adapt import TextCorrection, fit_correction
from v05.value.adapt_loo import LooCorrection, fit_loo_correction
from v05.value.embed import get_encoder
from v05.value.irt import fit_irt, logit_normal_moments, stacked_shift
from v05.value.store import shipped_models  # noqa: F401  (re-exported: v05.value.shipped_models)
from v05.value.surface import surface_features
from v05.value.train import fit_text_difficulty, select_variances

DEFAULT_CONTEXT_SAMPLES = 4
"""Rollouts assumed behind each context pass rate when the caller does not say (V0.5's k_init)."""


class NotFittedError(RuntimeError):
    """The model has no weights yet."""


class ValueModel:
    """Generalist value model: in-context item-response head over text embeddings.

    Parameters
    ----------
    encoder : str, default="minilm-l6-v2"
        Text encoder name (:func:`v05.value.embed.get_encoder`), e.g. ``"hashing-256"`` for tests.
    ridge : float, default=0.03
        L2 penalty on the text-difficulty weights.
    rank_weight : float, default=0.25
        Weight of V0's pairwise ranking loss (the rest is soft cross-entropy).
    n_pairs : int, default=20000
        Ranking pairs drawn per training policy.
    stack_prior : float, default=100.0
        Prior precision of the in-context weights on other policies' residuals
        (:func:`v05.value.irt.stacked_shift`); larger trusts the shared difficulty more, ``inf`` turns it off.
    adapt : bool, default=True
        Correct the text prior in context (:mod:`v05.value.adapt`): a Bayesian ridge on the context's
        residuals whose strength the context chooses, so the model adapts to a domain it was not trained on.
    correction : {"embedding", "surface"}, default="embedding"
        Which correction ``adapt`` applies: ``"embedding"`` (:mod:`v05.value.adapt`: embedding features,
        strength by marginal likelihood up to 0.1, the training variance kept) or ``"surface"``
        (:mod:`v05.value.adapt_loo`: surface features beside the embedding, strength and the text prior's
        variance chosen by leave-one-out in context). No effect when ``adapt`` is False.
    random_state : int or None, default=0
    cache_dir : path, False or None, default=None
        Embedding cache (``None``: the default folder; ``False``: no cache).

    Examples
    --------
    >>> from v05.data import PassRateTable
    >>> t = PassRateTable.from_columns(prompt_id=["a", "b", "a", "b"], policy=["p", "p", "q", "q"],
    ...     pass_rate=[0.9, 0.1, 0.7, 0.2], prompt=["easy sum", "hard proof", "easy sum", "hard proof"])
    >>> vm = ValueModel(encoder="hashing-64", cache_dir=False).fit(t)
    >>> mean, var = vm.predict(["easy sum"], np.array([0.8]), ["hard proof", "new prompt"], history=t)
    >>> bool(mean[0] < 0.5 and var[0] < var[1])
    True
    """

    def __init__(self, encoder="minilm-l6-v2", *, ridge=0.03, rank_weight=0.25, n_pairs=20000, stack_prior=100.0,
                 adapt=True, correction="embedding", random_state=0, cache_dir=None):
        self.encoder = encoder
        self.ridge = ridge
        self.rank_weight = rank_weight
        self.n_pairs = n_pairs
        self.stack_prior = stack_prior
        self.adapt = adapt
        self.correction = correction
        self.random_state = random_state
        self.cache_dir = cache_dir

    def fit(self, *tables) -> "ValueModel":
        """Meta-train across the policies of one or more pass-rate tables (each needs a ``prompt`` column).

        Returns
        -------
        self
        """
        if not tables:
            raise ValueError("fit needs at least one PassRateTable")
        self.validate_params()
        self.__dict__.pop("_difficulty_memo", None)  # difficulties of the previous fit
        rng = np.random.default_rng(self.random_state)
        texts, policy, prompt, p, n, source = _stack_tables(tables)
        if len(np.unique(policy)) < 2:
            raise ValueError("fit needs at least 2 policies (the variances are fitted across policies)")
        self.training_policies_ = sorted({str(name) for t in tables for name in t.policies})
        self.training_prompt_hash_ = store.prompt_fingerprint(texts)
        raw = self._raw_features(texts)
        self.feature_mean_ = raw.mean(axis=0)
        self.feature_scale_ = raw.std(axis=0) + 1e-6
        x = (raw - self.feature_mean_) / self.feature_scale_
        kwargs = dict(ridge=float(self.ridge), rank_weight=float(self.rank_weight), n_pairs=int(self.n_pairs))
        weight = 1.0 / np.bincount(source)[source]  # each table weighs the same, whatever its size
        self.coef_ = fit_text_difficulty(x, policy, prompt, p, weight, rng=rng, **kwargs)
        fold = rng.integers(0, 2, len(texts))  # cross-fitting: each prompt's f comes from the other fold
        f_oof = np.empty(len(texts))
        for k in (0, 1):
            train = fold[prompt] != k
            w = fit_text_difficulty(x, policy[train], prompt[train], p[train], weight[train], rng=rng, **kwargs)
            f_oof[fold == k] = x[fold == k] @ w
        self.tau2_, self.s2_, self.heldout_loglik_ = select_variances(policy, prompt, p, n, f_oof, source, rng=rng)
        self.n_policies_, self.n_rows_ = int(len(np.unique(policy))), int(len(p))
        return self

    def embed(self, texts) -> np.ndarray:
        """Embeddings of ``texts`` (n_texts, dim), memoised in memory and cached on disk.

        The in-memory memo keeps every text seen by this instance (the RL loop re-predicts the same prompts).
        A neural encoder's first pass over many texts shows a progress bar.
        """
        if getattr(self, "_encoder_obj", None) is None:
            self._encoder_obj, self._memo, self._surface_memo = get_encoder(self.encoder), {}, {}
        todo = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if todo:
            vectors = self._encoder_obj.encode(todo, cache_dir=self.cache_dir, progress=True)
            self._memo.update(zip(todo, vectors))
        return np.stack([self._memo[t] for t in texts]) if len(texts) else np.empty((0, self._encoder_obj.dim), np.float32)

    def _raw_features(self, texts) -> np.ndarray:
        """Embedding plus log character length, shape (n_texts, dim + 1)."""
        length = np.log1p([len(t) for t in texts])[:, None]
        raw = np.hstack([self.embed(texts).astype(np.float64), length])
        expected = len(getattr(self, "feature_mean_", raw[0]))
        if raw.shape[1] != expected:
            raise ValueError(f"encoder {self.encoder!r} gives {raw.shape[1] - 1} dimensions, but the weights were "
                             f"trained on {expected - 1}: set encoder back to the one used in fit")
        return raw

    def _features(self, texts) -> np.ndarray:
        """Standardised features (n_texts, n_features): the inputs of the text map and its correction."""
        return (self._raw_features(texts) - self.feature_mean_) / self.feature_scale_

    def text_difficulty(self, texts) -> np.ndarray:
        """Prior mean difficulty ``f(x)`` of each text (logit scale; higher = harder), memoised.

        Texts not seen since the last fit are computed in one batch and kept, so a caller that passes all
        of its texts once up front (the RL loop) gets the same values on every later call and on resume.
        """
        self._check_fitted()
        memo = self.__dict__.setdefault("_difficulty_memo", {})
        todo = [t for t in dict.fromkeys(texts) if t not in memo]
        if todo:
            memo.update(zip(todo, self._features(todo) @ self.coef_))
        return np.array([memo[t] for t in texts], dtype=np.float64)

    def predict(self, context_prompts, context_pass_rates, target_prompts, *, history=None, context_n_samples=None):
        """Predicted pass rate and its variance for each target prompt.

        Parameters
        ----------
        context_prompts : list of str, length n_context
            Prompts the policy was evaluated on.
        context_pass_rates : array-like of shape (n_context,)
            Its observed pass rates there, in [0, 1].
        target_prompts : list of str, length n_targets
        history : PassRateTable or None
            Rows of *other* policies or earlier checkpoints (needs a ``prompt`` column); rows whose prompt
            text equals a target give it history. ``n_samples`` defaults to 1 per row when absent.
        context_n_samples : int or array-like, optional
            Rollouts behind each context pass rate (default 4).

        Returns
        -------
        mean : ndarray of shape (n_targets,)
            Predicted pass rate in [0, 1].
        var : ndarray of shape (n_targets,)
            Its predictive variance (> 0): uncertainty about the true pass rate.
        """
        self._check_fitted()
        ctx_p, ctx_n = _check_context(context_prompts, context_pass_rates, target_prompts, context_n_samples)
        texts = list(dict.fromkeys([*context_prompts, *target_prompts]))
        pol, rows_prompt, rows_p, rows_n = [np.zeros(len(ctx_p), dtype=np.int64)], [list(context_prompts)], [ctx_p], [ctx_n]
        if history is not None:
            h_pol, h_texts, h_p, h_n = _history_rows(history)
            texts = list(dict.fromkeys([*texts, *h_texts]))
            pol.append(h_pol + 1)
            rows_prompt.append(h_texts)
            rows_p.append(h_p)
            rows_n.append(h_n)
        index = {t: i for i, t in enumerate(texts)}
        prompt_idx = np.fromiter((index[t] for part in rows_prompt for t in part), dtype=np.int64)
        policy_idx, rows_p, rows_n = np.concatenate(pol), np.concatenate(rows_p), np.concatenate(rows_n)
        d_prior, tau2 = self.text_difficulty(texts), self.tau2_
        if self.adapt and self.correction == "surface":
            loo = self._loo_correction(texts, d_prior, prompt_idx[: len(ctx_p)], ctx_p, ctx_n)
            if loo is not None:  # None: a context too small to correct (adapt_loo.MIN_CONTEXT)
                shift, shift_var = loo(d_prior, self._features(texts), self.surface(texts))
                # the context's variance is its total cold error (text prior + this policy's interaction, which
                # one policy cannot split); a prompt that other policies' rows inform keeps the trained split
                informed = np.bincount(prompt_idx[len(ctx_p):], minlength=len(texts)) > 0
                d_prior, tau2 = d_prior - shift, np.where(informed, self.tau2_, loo.tau2) + shift_var
        elif self.adapt:
            correction = self._correction(texts, d_prior, prompt_idx[: len(ctx_p)], ctx_p, ctx_n)
            shift, shift_var = correction(d_prior, self._features(texts))
            d_prior, tau2 = d_prior - shift, self.tau2_ + shift_var
        fit = fit_irt(policy_idx, prompt_idx, rows_p, rows_n, d_prior, int(policy_idx.max()) + 1, tau2=tau2, s2=self.s2_)
        target = np.fromiter((index[t] for t in target_prompts), dtype=np.int64)
        shift = stacked_shift(fit, policy_idx, prompt_idx, rows_p, rows_n, target, prior_precision=float(self.stack_prior))
        mean = fit.a[0] - fit.d[target] + shift
        var = fit.d_var[target] + fit.a_var[0] + self.s2_
        return logit_normal_moments(mean, var)

    def _correction(self, texts, f, ctx_idx, ctx_p, ctx_n) -> TextCorrection:
        """The in-context correction of the text prior, fitted on the context rows (prompt ``texts[ctx_idx]``)
        against the cold prediction ``a - f`` with the policy's ability ``a`` read from the same rows."""
        cold = fit_irt(np.zeros(len(ctx_idx), np.int64), ctx_idx, ctx_p, ctx_n, f, 1, tau2=self.tau2_, s2=self.s2_)
        x = self._features([texts[i] for i in ctx_idx])
        return fit_correction(cold.a[0] - f[ctx_idx], f[ctx_idx], x, ctx_p, ctx_n, tau2=self.tau2_, s2=self.s2_)

    def _loo_correction(self, texts, f, ctx_idx, ctx_p, ctx_n) -> LooCorrection | None:
        """The leave-one-out correction with surface features (:mod:`v05.value.adapt_loo`), fitted on the
        context rows against the cold prediction ``a - f``."""
        cold = fit_irt(np.zeros(len(ctx_idx), np.int64), ctx_idx, ctx_p, ctx_n, f, 1, tau2=self.tau2_, s2=self.s2_)
        ctx_texts = [texts[i] for i in ctx_idx]
        return fit_loo_correction(cold.a[0] - f[ctx_idx], f[ctx_idx], self._features(ctx_texts), self.surface(ctx_texts),
                                  ctx_p, ctx_n, s2=self.s2_, a_var=float(cold.a_var[0]))

    def surface(self, texts) -> np.ndarray:
        """Surface features of ``texts`` (:func:`v05.value.surface.surface_features`), memoised like embeddings."""
        memo = self.__dict__.setdefault("_surface_memo", {})
        todo = [t for t in dict.fromkeys(texts) if t not in memo]
        if todo:
            memo.update(zip(todo, surface_features(todo)))
        return np.stack([memo[t] for t in texts]) if len(texts) else surface_features([])

    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            raise NotFittedError("ValueModel is not fitted; call fit() or ValueModel.load(path)")

    def validate_params(self) -> None:
        """Raise ``TypeError``/``ValueError`` naming the first bad constructor argument (``fit`` and
        ``load`` call it; a command line calls it before reading any data)."""
        if not isinstance(self.encoder, str):
            raise TypeError(f"encoder must be a str; got {type(self.encoder).__name__} {self.encoder!r}")
        get_encoder(self.encoder)  # raises for an unknown name
        check_number(self.ridge, "ridge", minimum=0, min_open=True)
        check_number(self.rank_weight, "rank_weight", minimum=0, maximum=1)
        check_positive_int(self.n_pairs, "n_pairs")
        check_number(self.stack_prior, "stack_prior", minimum=0, min_open=True, allow_inf=True)
        if not isinstance(self.adapt, (bool, np.bool_)):
            raise TypeError(f"adapt must be a bool; got {type(self.adapt).__name__} {self.adapt!r}")
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {list(CORRECTIONS)}; got {self.correction!r}")
        if self.random_state is not None:
            check_positive_int(self.random_state, "random_state", minimum=0)

    def get_params(self) -> dict:
        """Constructor arguments (sklearn contract)."""
        return {k: getattr(self, k) for k in PARAMS}

    def training_overlap(self, policies, prompts) -> dict | None:
        """What of the given policies and prompt texts this model was trained on (None: not recorded).

        Returns
        -------
        dict
            ``{"policies": [names seen in training], "prompt_share": share of the unique prompts seen}``.
        """
        if getattr(self, "training_policies_", None) is None:
            return None
        seen = set(self.training_policies_)
        hashes = store.prompt_fingerprint(prompts)
        share = float(np.isin(hashes, self.training_prompt_hash_).mean()) if len(hashes) else 0.0
        return {"policies": sorted({str(p) for p in policies} & seen), "prompt_share": share}

    def save(self, path, *, command: str | None = None) -> Path:
        """Write ``config.json`` and ``weights.safetensors`` into directory ``path``; returns it.

        ``command`` (the training command line) is recorded in the config so the weights can be rebuilt; so
        are the training policies (names) and prompts (hashes), to warn when a model is evaluated in sample,
        and the SHA-256 of the weights file, verified by :meth:`load`.
        """
        self._check_fitted()
        config = {
            "params": {k: v for k, v in self.get_params().items() if k != "cache_dir"}, "tau2": self.tau2_,
            "s2": self.s2_, "heldout_loglik": self.heldout_loglik_, "n_policies": self.n_policies_,
            "n_rows": self.n_rows_, "n_features": int(len(self.coef_)), "encoder_dim": int(len(self.coef_)) - 1,
            "training_command": command, "training_policies": getattr(self, "training_policies_", None),
        }
        tensors = {k: np.asarray(getattr(self, k + "_"), dtype=np.float64) for k in store.VECTORS}
        if getattr(self, "training_prompt_hash_", None) is not None:
            tensors["train_prompt_hash"] = self.training_prompt_hash_
        return store.write(path, config, tensors)

    @classmethod
    def load(cls, name_or_path="default", *, adapt=None, cache_dir=None) -> "ValueModel":
        """Load shipped weights by name (``"default"``) or from a directory written by :meth:`save`.

        ``adapt`` (True/False) overrides the stored in-context correction setting (a prediction-time switch;
        the weights are the same either way); None keeps the stored one.

        Only JSON and safetensors are read: loading never executes code from the files. The weights are
        checked against the checksum in the config, and their size against the encoder.

        Raises
        ------
        FileNotFoundError
            Unknown name, missing directory or missing file.
        ValueError
            Malformed, corrupt or inconsistent config or weights (the message names the file and field).
        """
        stored = [k for k in PARAMS if k != "cache_dir"]
        path, config, tensors = store.read(name_or_path, params=stored, encoder_dim=lambda name: get_encoder(name).dim)
        params = config["params"] if adapt is None else {**config["params"], "adapt": check_bool(adapt, "adapt")}
        vm = cls(**{**params, "cache_dir": cache_dir})
        try:
            vm.validate_params()
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path / store.CONFIG_FILE}: field 'params': {e}") from None
        vm.coef_, vm.feature_mean_, vm.feature_scale_ = (tensors[k] for k in store.VECTORS)
        vm.tau2_, vm.s2_ = float(config["tau2"]), float(config["s2"])
        vm.heldout_loglik_ = config.get("heldout_loglik")
        vm.n_policies_, vm.n_rows_ = int(config["n_policies"]), int(config["n_rows"])
        vm.training_policies_ = config.get("training_policies")
        vm.training_prompt_hash_ = tensors.get("train_prompt_hash", np.zeros(0, dtype=np.int64))
        vm.training_command_ = config.get("training_command")
        return vm


PARAMS = ("encoder", "ridge", "rank_weight", "n_pairs", "stack_prior", "adapt", "correction", "random_state", "cache_dir")
"""Constructor arguments; all but ``cache_dir`` are stored with the weights (a config without ``correction``,
written before it existed, loads with the default)."""
CORRECTIONS = ("embedding", "surface")
"""Values of ``ValueModel(correction=...)``: the in-context corrections of the text prior."""


def _check_context(context_prompts, context_pass_rates, target_prompts, context_n_samples):
    for name, texts in (("context_prompts", context_prompts), ("target_prompts", target_prompts)):
        if isinstance(texts, str):
            raise TypeError(f"{name} must be a list of str, not a single str")
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"{name}[{i}] is {type(t).__name__}, expected str")
    if len(context_prompts) == 0:
        raise ValueError("context is empty: the policy's ability is read from at least one (prompt, pass rate)")
    p = as_1d(context_pass_rates, "context_pass_rates", dtype=np.float64)
    if len(p) != len(context_prompts):
        raise ValueError(f"context_pass_rates has {len(p)} values for {len(context_prompts)} context_prompts")
    bad = ~(np.isfinite(p) & (p >= 0.0) & (p <= 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"context_pass_rates[{i}] = {float(p[i])} (prompt {context_prompts[i][:40]!r}): pass rates "
                         f"must be finite numbers in [0, 1] ({int(bad.sum())} bad value(s) in all)")
    n = np.asarray(DEFAULT_CONTEXT_SAMPLES if context_n_samples is None else context_n_samples, dtype=np.float64)
    if n.ndim > 1 or (n.ndim == 1 and len(n) != len(p)):
        raise ValueError(f"context_n_samples has shape {n.shape}; expected a number or {len(p)} values")
    n = np.broadcast_to(n, p.shape).copy()
    if not np.all(np.isfinite(n) & (n >= 1)):
        i = int(np.flatnonzero(~(np.isfinite(n) & (n >= 1)))[0])
        raise ValueError(f"context_n_samples[{i}] = {float(n[i])}: must be a finite number >= 1")
    return p, n


def _history_rows(history):
    from v05.data import PassRateTable

    if not isinstance(history, PassRateTable):
        raise TypeError(f"history must be a v05.data.PassRateTable or None, got {type(history).__name__}")
    if history.prompt is None:
        raise ValueError("history has no 'prompt' column; the value model matches history rows by prompt text")
    _, pol = np.unique(history.policy, return_inverse=True)
    n = np.ones(len(history)) if history.n_samples is None else history.n_samples.astype(np.float64)
    return pol.astype(np.int64), history.prompt.tolist(), history.pass_rate.astype(np.float64), n


def _stack_tables(tables):
    """Concatenate tables into (unique texts, policy idx, prompt idx, pass rate, n_samples, table idx)."""
    from v05.data import PassRateTable

    texts, policies, p, n, source = [], [], [], [], []
    for k, t in enumerate(tables):
        if not isinstance(t, PassRateTable):
            raise TypeError(f"tables[{k}] is {type(t).__name__}, expected a v05.data.PassRateTable")
        if t.prompt is None:
            raise ValueError(f"tables[{k}] has no 'prompt' column; the value model needs prompt texts")
        texts.extend(t.prompt.tolist())
        policies.extend(f"{k}/{name}" for name in t.policy.tolist())
        p.append(t.pass_rate)
        n.append(np.ones(len(t)) if t.n_samples is None else t.n_samples.astype(np.float64))
        source.append(np.full(len(t), k))
    index: dict[str, int] = {}
    prompt = np.fromiter((index.setdefault(t, len(index)) for t in texts), dtype=np.int64, count=len(texts))
    _, policy = np.unique(policies, return_inverse=True)
    return list(index), policy.astype(np.int64), prompt, np.concatenate(p), np.concatenate(n), np.concatenate(source)
