"""The per-step edit: z_lh += alpha * g(t) * w_lh * sigma_lh * theta_lh, on scheduled steps.

(Or, with `edit="bounded"`, a push of z_lh's projection on theta_lh towards the trait's
class-mean projection by at most that much and never past it: `smitin.edits`.)

All traits and heads of a layer are edited by one small matmul: the shifts of every trait are
stacked into [traits, heads * head_dim] per layer once, before generation, and each step's gains
[rows, traits] stay on the device, written by the monitor at the end of the previous step. The
monitor reads only its watched heads, with one matmul per layer that holds any of them, into a
preallocated buffer: a layer call is a few ops, none of them per head, and none waits on the host.

A live run (`Steering.go_live`, `Steering.change`; `smitin.controls` drives it) rewrites the same
per-step tensors from a step on, between steps; the captured step (`static_step`,
`_on_heads_static`, driven by `smitin.captured`) runs the same arithmetic on the same buffers with
its step index on the device. About 590 lines because the live changes and the captured step must
read and write the buffers only this class lays out; split off, they would reach into its internals.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any

import torch

from .backbone import Backbone
from .edits import EDITS, bounded_edit
from .lanes import Lane, layout
from .monitor import Trace, confidence, next_gain
from .options import GAINS, ROWS
from .probes import ProbeSet
from .recipes import DEFAULT_RECIPE, RECIPES, recipe

WATCH = ("best", "unpushed")  # the heads the monitor reads: the most accurate, or the most accurate unpushed


@dataclass
class Steer:
    """One trait to push: its probes, how hard (alpha < 0 removes it), which heads, and monitoring.

    The defaults are smitin's recipe (`smitin.recipes`): the 16 best heads at weight 1, pushed
    along the unit probe weights at every step, monitored. heads: an int K steers the K best heads
    with weight 1; "soft" weights every head by ((acc - min) / (max - min)) ** 3 (the paper's).
    direction: "probe" (unit probe weights, the paper's and smitin's), "mass_mean" (class-mean
    difference, ITI's), "denoised" (class-mean difference without its component along the heads'
    response to noise), or None for the probe file's own. `Steer.from_recipe(probes, "paper")` is the paper.
    threshold: the monitor's tau: "positive" (default, smitin's recipe) for what the watched heads
    read on the trait's class mean; "paper" or None for the paper's median(acc) - std(acc); or a
    probability.
    watch: which heads the monitor reads: "best" (the `monitor_heads` most accurate, the paper's)
    or "unpushed" (the most accurate among the heads not pushed).

    lane: when the trait should be there (`smitin.lanes`): spans of new audio that want it present
    ("add", pushed with +|alpha|), absent ("remove", -|alpha|), left alone ("free", no edit) or
    held ("keep"), e.g. `[(0, 3, "remove"), (3, 6, "add")]`, `"0-3:remove,3-6:add"` or a `Lane`;
    outside its spans, and with no lane, the trait is steered as `keep` and the sign of alpha say.
    The monitor follows the lane.
    keep: hold a trait that is already there (e.g. the prompt's piano) instead of adding it: the
    monitor watches it (even with monitor=False) and pushes with +alpha only on steps after the
    probes read it below the threshold; never before the first reading, never past the threshold.
    edit: "shift" (default) adds alpha * w * sigma * theta; "bounded" pushes each head towards the
    trait's class-mean reading by at most that, and no further (`smitin.edits`).
    """

    probes: ProbeSet
    alpha: float = 5.0
    heads: str | int = RECIPES[DEFAULT_RECIPE].heads
    monitor: bool = True
    threshold: float | str | None = RECIPES[DEFAULT_RECIPE].threshold
    monitor_heads: int = 16
    direction: str | None = RECIPES[DEFAULT_RECIPE].direction
    lane: Lane | str | Sequence[Any] | Mapping[str, Any] | None = None
    watch: str = "best"
    keep: bool = False
    edit: str = RECIPES[DEFAULT_RECIPE].edit

    def __post_init__(self) -> None:
        if self.edit not in EDITS:
            raise ValueError(f"edit must be one of {EDITS}, not {self.edit!r}")
        if self.keep and self.alpha < 0:
            raise ValueError(
                f"{self.name}: keep holds a trait present, so its strength must be positive, not {self.alpha:g}"
            )
        if self.lane is not None:
            self.lane = Lane.of(self.lane)  # a bad lane is refused here, with a LaneError
        if self.watch not in WATCH:
            raise ValueError(f"watch must be one of {WATCH}, not {self.watch!r}")
        if self.watch == "unpushed" and self.heads == "soft":
            raise ValueError('watch="unpushed" needs top-K heads: soft weights push every head')

    def watched(self) -> torch.Tensor:
        """Flat indices of the heads the monitor reads: the `monitor_heads` most accurate ones, or
        with watch="unpushed" the most accurate among those this steer does not push (so the
        monitor hears what the push did downstream, not the push itself)."""
        if self.watch == "best":
            return self.probes.top(self.monitor_heads)
        acc = self.probes.accuracy.flatten().float().clone()
        acc[self.head_weights().flatten() > 0] = float("-inf")
        k = min(self.monitor_heads, int((acc > float("-inf")).sum()))
        if k < 1:
            raise ValueError(f"{self.name}: every head is pushed, none is left to watch")
        return torch.topk(acc, k).indices

    @property
    def automation(self) -> Lane | None:
        """The trait's lane, or None (constant behaviour)."""
        return Lane.of(self.lane) if self.lane is not None else None

    @classmethod
    def from_recipe(cls, probes: ProbeSet, name: str = DEFAULT_RECIPE, **overrides: Any) -> Steer:
        """A Steer set up by a named recipe (`smitin.recipes.RECIPES`); keywords override its fields.

        The recipe's schedule is a generation option: pass `every=recipe(name).every` to `generate`.
        """
        return cls(probes, **{**recipe(name).steer_kwargs(), **overrides})

    @property
    def name(self) -> str:
        return self.probes.trait

    def head_weights(self) -> torch.Tensor:
        acc = self.probes.accuracy.float()
        if self.heads == "soft":
            lo, hi = acc.min(), acc.max()
            if hi - lo < 1e-12:
                return torch.ones_like(acc)
            return ((acc - lo) / (hi - lo)) ** 3
        k = int(self.heads)
        w = torch.zeros(acc.numel())
        w[self.probes.top(k)] = 1.0
        return w.reshape(acc.shape)

    def shift(self) -> torch.Tensor:
        """[L, H*D]: alpha * w * sigma * theta for every head of every layer."""
        unit, sigma = self.probes.steering_vectors(self.direction)
        per_head = self.alpha * self.head_weights() * sigma.float()
        return (per_head[..., None] * unit.float()).flatten(1)

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """What a bounded edit needs: unit directions [L, H, D], the projections of the positive
        and negative class means on them [L, H], and the cap |alpha| * w * sigma [L, H]."""
        unit, sigma = self.probes.steering_vectors(self.direction)
        unit = unit.float()
        pos = (unit * self.probes.mean_pos.float()).sum(-1)
        neg = (unit * self.probes.mean_neg.float()).sum(-1)
        return unit, pos, neg, abs(self.alpha) * self.head_weights() * sigma.float()

    def settings(self) -> dict:
        return {
            "trait": self.name,
            "alpha": self.alpha,
            "heads": self.heads,
            "monitor": self.monitor,
            "threshold": self.tau,
            "monitor_heads": self.monitor_heads,
            "watch": self.watch,
            "direction": self.probes.resolve(self.direction),
            "model": self.probes.meta.get("model"),
            "lane": str(self.automation) if self.lane is not None else None,
            "keep": self.keep,
            "edit": self.edit,
        }

    @property
    def tau(self) -> float:
        """The monitor's threshold: "positive" (C of the watched heads at the trait's class mean),
        "paper" or None (the paper's median(acc) - std(acc)), or the number given."""
        if self.threshold == "positive":
            return self.probes.class_reading(self.watched())
        if self.threshold is None or self.threshold == "paper":
            return self.probes.threshold()
        if isinstance(self.threshold, str):
            raise ValueError(
                f"threshold must be a number in (0, 1), 'positive' or 'paper', not {self.threshold!r}"
            )
        return self.threshold


class Steering:
    """Hook state for one generation: shifts, monitor, schedule, and the per-step record."""

    def __init__(
        self,
        backbone: Backbone,
        steers: Sequence[Steer],
        *,
        every: int = 1,
        rows: str = "both",
        gain: str = "switch",
        cfg: bool = True,
        max_steps: int = 1500,
        duration: float | None = None,
        owners: Sequence[int | None] | None = None,
    ) -> None:
        if owners is not None and len(owners) != len(steers):
            raise ValueError(f"{len(owners)} owners for {len(steers)} steers")
        self.owners = list(owners) if owners is not None else [None] * len(steers)
        if rows not in ROWS:
            raise ValueError(f"rows must be one of {ROWS}, not {rows!r}")
        if gain not in GAINS:
            raise ValueError(f"gain must be one of {GAINS}, not {gain!r}")
        if every < 1:
            raise ValueError("every (the schedule interval) must be >= 1")
        for s in steers:
            s.probes.check(backbone)
            if s.automation is not None and duration is not None:
                s.automation.check(duration, s.name)
            if (s.monitor or s.keep) and s.tau <= 0.5:
                other = (
                    "a number in (0, 1)"
                    if s.threshold == "positive"
                    else "threshold='positive' (the default)"
                )
                warnings.warn(
                    f"{s.name}: monitor threshold {s.tau:.3f} <= 0.5 (weak probes: median accuracy "
                    f"{float(s.probes.accuracy.median()):.2f}); the monitor will read the trait as present "
                    f"almost at once and stop steering. Train on more tracks, or use {other}",
                    stacklevel=3,
                )
        self.backbone, self.steers = backbone, list(steers)
        self.every, self.rows, self.gain, self.cfg = every, rows, gain, cfg
        self.max_steps = max_steps
        dev, dt = backbone.device, backbone.dtype
        lay = backbone.layout
        n = len(self.steers)
        self.tau = torch.tensor([s.tau for s in self.steers], device=dev, dtype=torch.float32)
        self.remove = torch.tensor([s.alpha < 0 for s in self.steers], device=dev, dtype=torch.bool)
        self.active = torch.tensor([s.monitor for s in self.steers], device=dev, dtype=torch.bool)
        # Lanes (and kept traits), laid out per step once (`smitin.lanes.layout`): row `step` of
        # each tensor is what that step wants, indexed like `g[step]`. Without lanes or kept
        # traits none of them is read per step.
        lanes = [s.automation for s in self.steers]
        keeps = [s.keep for s in self.steers]
        self.lanes_on = any(lane is not None for lane in lanes) or any(keeps)
        alphas = [s.alpha for s in self.steers]
        laid = layout(lanes, alphas, max_steps + 1, backbone.frame_rate, duration, keeps)
        self.lane_scale = laid.scale.to(dev)  # [steps + 1, T] |push| in [0, 1], multiplies the gain
        self.lane_sign = laid.sign.to(dev, dt)  # [steps + 1, T] +-1: with or against the alpha's sign
        self.lane_remove = laid.remove.to(dev)  # [steps + 1, T] the monitor watches 1 - C
        self.lane_hold = laid.hold.to(dev)  # [steps + 1, T] kept: no push before the first reading
        self.lane_active = self.lane_hold | self.active  # [steps + 1, T] kept traits are always monitored
        self.want = laid.want  # [steps + 1, T] +1 add, -1 remove, 0 free, 2 keep: the trace's record (CPU)
        # What a live run may change (`go_live`, `change`): each trait's alpha, lane and monitor now,
        # the alpha its shift was built with, and the record of every change made.
        self.duration = duration
        self.refs = [s.alpha for s in self.steers]
        self.live_alpha = [s.alpha for s in self.steers]
        self.live_lane = lanes
        self.live_monitor = [s.monitor for s in self.steers]
        self.changes: list[dict[str, Any]] = []
        # Everything the hook touches is laid out per layer here, once, so that a layer call is a
        # handful of fused ops on preallocated buffers: no indexing, no allocation per head.
        bounded = [s.edit == "bounded" for s in self.steers]
        self.shift_on = not all(bounded)
        shift = (
            torch.stack(
                [
                    torch.zeros(lay.layers, lay.width) if b else s.shift()
                    for s, b in zip(self.steers, bounded, strict=True)
                ]
            ).to(dev, dt)
            if n
            else None
        )  # [T, L, HD]
        self.shifts = (
            [shift[:, layer].contiguous() for layer in range(lay.layers)] if shift is not None else []
        )
        # Bounded edits (`smitin.edits`): per layer the traits' unit directions [T, H, D], class-mean
        # projections [T, H] and caps [T, H] (0 for traits that shift instead), and per step the
        # push's absolute sign [T] (+1 towards present), all laid out here.
        self.bounded_on = any(bounded)
        self.bounded: list[tuple[torch.Tensor, ...]] = []
        if self.bounded_on:
            parts = [s.bounds() for s in self.steers]
            unit, pos, neg = (torch.stack([p[i] for p in parts]).to(dev, dt) for i in range(3))
            size = torch.stack([p[3] * b for p, b in zip(parts, bounded, strict=True)]).to(dev, dt)
            self.bounded = [
                (unit[:, layer].contiguous(), pos[:, layer], neg[:, layer], size[:, layer])
                for layer in range(lay.layers)
            ]
        alpha_sign = torch.tensor([-1.0 if a < 0 else 1.0 for a in alphas])
        self.push_sign = (laid.sign * alpha_sign).to(dev, dt)  # [steps + 1, T]
        # Monitored (trait, head) pairs, ordered by layer: pair i's reading goes to row i of `read`.
        # `slots[t, j]` is the row of trait t's j-th watched head; traits watching fewer heads
        # point their spare slots at a last row that stays NaN (the median ignores it).
        watch = [s.watched() for s in self.steers]
        flat = torch.cat(watch) if n else torch.zeros(0, dtype=torch.long)
        trait = torch.cat([torch.full((len(w),), t) for t, w in enumerate(watch)]) if n else flat
        slot = torch.cat([torch.arange(len(w)) for w in watch]) if n else flat
        order = torch.argsort(flat, stable=True)
        flat, trait, slot = flat[order], trait[order], slot[order]
        pairs = len(flat)
        self.slots = torch.full((n, max((len(w) for w in watch), default=0)), pairs, dtype=torch.long)
        self.slots[trait, slot] = torch.arange(pairs)
        if n:
            weight = torch.stack([s.probes.weight.float().flatten(0, 1) for s in self.steers])  # [T, L*H, D]
            bias = torch.stack([s.probes.bias.float().flatten() for s in self.steers])  # [T, L*H]
            per_head = torch.zeros(pairs, lay.heads, lay.head_dim)
            per_head[torch.arange(pairs), flat % lay.heads] = weight[trait, flat]  # zero outside the head
            read_w, read_b = per_head.flatten(1).to(dev, dt), bias[trait, flat][:, None].to(dev, dt)
        layers, counts = torch.unique_consecutive(flat // lay.heads, return_counts=True)
        ends = torch.cumsum(counts, 0).tolist()
        self.read_rows = {  # layer -> its rows of `read`
            layer: (end - count, end)
            for layer, count, end in zip(layers.tolist(), counts.tolist(), ends, strict=True)
        }
        self.read_weight = {
            layer: read_w[lo:hi] for layer, (lo, hi) in self.read_rows.items()
        }  # [pairs, H*D]
        self.read_bias = {layer: read_b[lo:hi] for layer, (lo, hi) in self.read_rows.items()}  # [pairs, 1]
        self.slots = self.slots.to(dev)
        self.watched = [layer in self.read_rows for layer in range(lay.layers)]
        self.last_watched = max(self.read_rows) if self.read_rows else -1
        self.past = 0
        self.static = False  # set by `static_step` (captured decoding) once the prefill ran
        self.first: int | None = None
        self.rows_n: int | None = None

    # -- per generate --------------------------------------------------------------------------
    def _begin(self, rows: int) -> None:
        """Allocate the step buffers once the batch is known (first hook call)."""
        dev, t = self.backbone.device, len(self.steers)
        batch = rows // 2 if self.cfg else rows
        self.batch = batch
        pairs = sum(hi - lo for lo, hi in self.read_rows.values())
        self.read = torch.zeros(pairs + 1, batch, device=dev, dtype=self.backbone.dtype)
        self.read[pairs] = float("nan")  # the padding row of traits that watch fewer heads
        self.c = torch.zeros(self.max_steps, batch, t, device=dev)
        self.g = torch.ones(self.max_steps + 1, batch, t, device=dev)  # g(0) = 1: no reading yet
        if self.lanes_on:  # ... unless the lane says otherwise; a kept trait waits for a reading
            self.g[0] = torch.where(self.lane_hold[0], 0.0, self.lane_scale[0])
        self.edited = torch.zeros(self.max_steps, dtype=torch.bool)
        keep = torch.ones(rows, 1, device=dev, dtype=self.backbone.dtype)
        if self.rows == "cond" and self.cfg:
            keep[batch:] = 0
        self.sample_of_row = torch.arange(rows, device=dev) % batch
        # Which sample each steer belongs to (per-request steering): a steer pushes only the rows
        # of its own sample; one without an owner pushes every sample. Folded into `keep` once.
        owner = torch.ones(batch, t, device=dev, dtype=self.backbone.dtype)
        for j, b in enumerate(self.owners):
            if b is not None:
                if not 0 <= b < batch:
                    raise ValueError(f"steer {j} belongs to sample {b}, but the batch holds {batch}")
                owner[:, j] = 0
                owner[b, j] = 1
        self.keep = keep * owner[self.sample_of_row]  # [rows, T]
        self.gain_rows = torch.zeros(rows, t, device=dev, dtype=self.backbone.dtype)
        # Captured decoding (`smitin.captured`): after the prefill, steps read their index from this
        # device tensor instead of Python, so one captured graph serves every step.
        self.step_t = torch.zeros(1, dtype=torch.long, device=dev)
        self.static = False
        self.gain_size = torch.zeros(rows, t, device=dev, dtype=self.backbone.dtype)  # bounded: |gain|
        self.steps_seen = 0
        self.rows_n = rows  # last: a watching thread (studio) reads rows_n as "the buffers exist"

    def on_decoder_step(self, past: int, _ids: torch.Tensor | None) -> None:
        """Decoder-step hook (`Backbone.decoder_steps`): positions already in the KV cache."""
        self.past = past

    def on_heads(self, layer: int, x: torch.Tensor) -> None:
        """Head hook (`Backbone.head_hooks`): read the monitored heads, then edit this step's last position."""
        if self.static and self.rows_n is not None:
            self._on_heads_static(layer, x[:, -1])
            return
        if layer == 0 and self.past == 0:  # a prefill: a new generation starts
            self._begin(x.shape[0])
            self.first = x.shape[1] - 1  # the prefill's last position is step 0
        if self.first is None:
            return
        step = self.past + x.shape[1] - 1 - self.first
        if not 0 <= step < self.max_steps:
            return
        last = x[:, -1]  # [rows, H*D]
        if self.watched[layer]:  # read the monitored heads before this layer's edit
            lo, hi = self.read_rows[layer]
            torch.addmm(
                self.read_bias[layer], self.read_weight[layer], last[: self.batch].T, out=self.read[lo:hi]
            )
        if step % self.every == 0:
            if layer == 0:  # this step's gains per CFG row, shared by every layer
                self.edited[step] = True
                torch.mul(self.g[step][self.sample_of_row], self.keep, out=self.gain_rows)
                if self.bounded_on:  # the push's size; its sign is push_sign[step]
                    self.gain_size.copy_(self.gain_rows)
                if self.lanes_on:  # a lane may push against the alpha's sign at this step
                    self.gain_rows.mul_(self.lane_sign[step])
            self._edit(layer, last, self.push_sign[step] if self.bounded_on else None)
        if layer == self.last_watched:
            c = confidence(torch.sigmoid(self.read[self.slots].float()).transpose(1, 2)).T  # [B, T]
            self.c[step] = c
            if self.lanes_on:  # the monitor watches the lane's direction; the lane scales its gain
                g = next_gain(c, self.tau, self.lane_remove[step + 1], self.lane_active[step + 1], self.gain)
                torch.mul(g, self.lane_scale[step + 1], out=self.g[step + 1])
            else:
                self.g[step + 1] = next_gain(c, self.tau, self.remove, self.active, self.gain)
            self.steps_seen = max(self.steps_seen, step + 1)

    def _edit(self, layer: int, last: torch.Tensor, sign: torch.Tensor | None) -> None:
        """This layer's edit of the newest position, in place (the eager and the captured step):
        the fixed shifts, and the bounded pushes (read before any edit, added after the shifts;
        `sign` [T] is the step's push direction, only read for bounded edits)."""
        if self.bounded_on:
            assert sign is not None
            unit, pos, neg, size = self.bounded[layer]
            delta = bounded_edit(last, unit, pos, neg, size, self.gain_size, sign)
        if self.shift_on:
            last.addmm_(self.gain_rows, self.shifts[layer])
        if self.bounded_on:
            last.add_(delta)

    def static_step(self, step: int) -> None:
        """Captured decoding: the next replay is step `step` (set on the device, no sync) of a decode
        loop whose prefill ran through `on_heads` as usual; the host keeps the schedule's record."""
        if self.rows_n is None or not 0 <= step < self.max_steps:
            return
        self.static = True
        self.step_t.fill_(step)
        self.edited[step] = step % self.every == 0
        self.steps_seen = max(self.steps_seen, step + 1)

    def _on_heads_static(self, layer: int, last: torch.Tensor) -> None:
        """`on_heads` for a step whose index is the device tensor `step_t`: the same arithmetic on the
        same buffers, indexed on the device; an off-schedule step adds a zero push (bit-identical)."""
        step = self.step_t
        if self.watched[layer]:
            lo, hi = self.read_rows[layer]
            torch.addmm(
                self.read_bias[layer], self.read_weight[layer], last[: self.batch].T, out=self.read[lo:hi]
            )
        if layer == 0:
            torch.mul(self.g.index_select(0, step)[0][self.sample_of_row], self.keep, out=self.gain_rows)
            if self.every > 1:
                self.gain_rows.mul_((step % self.every == 0).to(self.gain_rows.dtype))
            if self.bounded_on:
                self.gain_size.copy_(self.gain_rows)
            if self.lanes_on:
                self.gain_rows.mul_(self.lane_sign.index_select(0, step)[0])
        self._edit(layer, last, self.push_sign.index_select(0, step)[0] if self.bounded_on else None)
        if layer == self.last_watched:
            c = confidence(torch.sigmoid(self.read[self.slots].float()).transpose(1, 2)).T  # [B, T]
            self.c.index_copy_(0, step, c[None])
            after = step + 1
            if self.lanes_on:
                remove = self.lane_remove.index_select(0, after)[0]
                active = self.lane_active.index_select(0, after)[0]
                g = next_gain(c, self.tau, remove, active, self.gain)
                g = g * self.lane_scale.index_select(0, after)[0]
            else:
                g = next_gain(c, self.tau, self.remove, self.active, self.gain)
            self.g.index_copy_(0, after, g[None])

    # -- live control ----------------------------------------------------------------------------
    def go_live(self) -> None:
        """Take the per-step (lanes) path, so strengths, lanes and monitors may change mid-run.

        Call before the first step. While nothing changes the run is bit-identical to the constant
        path (its per-step factors are exactly 1); a trait at alpha 0 gets a unit shift and a zero
        push, so that it can be turned up later.
        """
        self.lanes_on = True
        dev, dt = self.backbone.device, self.backbone.dtype
        for t, s in enumerate(self.steers):
            if s.alpha == 0:
                self.refs[t] = 1.0
                unit = replace(s, alpha=1.0).shift().to(dev, dt)  # [L, H*D]
                for layer, rows in enumerate(self.shifts):
                    rows[t] = unit[layer]
                self._lay(t, 0)

    def _lay(self, t: int, step: int) -> None:
        """Lay trait t's current alpha and lane out again, for the steps from `step` on."""
        laid = layout(
            [self.live_lane[t]],
            [self.live_alpha[t]],
            self.max_steps + 1,
            self.backbone.frame_rate,
            self.duration,
            keeps=[self.steers[t].keep],
            refs=[self.refs[t]],
        )
        dev, dt = self.backbone.device, self.backbone.dtype
        self.lane_scale[step:, t] = laid.scale[step:, 0].to(dev)
        self.lane_sign[step:, t] = laid.sign[step:, 0].to(dev, dt)
        self.lane_remove[step:, t] = laid.remove[step:, 0].to(dev)
        self.lane_hold[step:, t] = laid.hold[step:, 0].to(dev)
        self.lane_active[step:, t] = self.lane_hold[step:, t] | self.active[t]
        self.want[step:, t] = laid.want[step:, 0]

    def change(
        self,
        step: int,
        slot: int,
        *,
        alpha: float | None = None,
        monitor: bool | None = None,
        lane: Lane | None | str = "keep",
    ) -> list[dict[str, Any]]:
        """From `step` on, trait `slot` is pushed with `alpha`, monitored or not, or follows `lane`
        (None: no lane; "keep": unchanged). Call between steps (a `decoder_steps` hook does), after
        `go_live`. Each change is recorded (step, time of new audio, old and new value) and
        returned. The step's gain is worked out again from the last reading, so step `step` is
        exactly what a lane laid out from the start with the same change makes.
        """
        if not self.lanes_on:
            raise RuntimeError("call go_live() before the run to change its steering while it runs")
        if not 0 <= step <= self.max_steps:
            return []
        name, when = self.steers[slot].name, round(step / self.backbone.frame_rate, 4)
        records: list[dict[str, Any]] = []

        def note(what: str, old: Any, new: Any) -> None:
            records.append(
                {
                    "step": step,
                    "time": when,
                    "trait": name,
                    "slot": slot,
                    "what": what,
                    "old": old,
                    "new": new,
                }
            )

        if alpha is not None and float(alpha) != self.live_alpha[slot]:
            note("alpha", self.live_alpha[slot], float(alpha))
            self.live_alpha[slot] = float(alpha)
        if lane != "keep":
            new_lane = Lane.of(lane) if lane is not None else None
            if new_lane != self.live_lane[slot]:
                old = self.live_lane[slot]
                note(
                    "lane",
                    str(old) if old is not None else None,
                    str(new_lane) if new_lane is not None else None,
                )
                self.live_lane[slot] = new_lane
        if records:
            self._lay(slot, step)
        if monitor is not None and bool(monitor) != self.live_monitor[slot]:
            note("monitor", self.live_monitor[slot], bool(monitor))
            self.live_monitor[slot] = bool(monitor)
            self.active[slot] = bool(monitor)
            self.lane_active[step:, slot] = self.lane_hold[step:, slot] | self.active[slot]
        if records and self.rows_n is not None and step > 0:  # this step's gain, from the last reading
            g = next_gain(
                self.c[step - 1], self.tau, self.lane_remove[step], self.lane_active[step], self.gain
            )
            torch.mul(g, self.lane_scale[step], out=self.g[step])
        self.changes.extend(records)
        return records

    def trace(self) -> Trace:
        """The record of the last generation (C, gain, edited) for the steps it ran."""
        n = self.steps_seen if self.rows_n is not None else 0
        settings = {
            "every": self.every,
            "rows": self.rows,
            "gain": self.gain,
            "cfg": self.cfg,
            "traits": [s.settings() for s in self.steers],
        }
        empty = torch.zeros(0, 0, len(self.steers))
        return Trace(
            traits=[s.name for s in self.steers],
            frame_rate=self.backbone.frame_rate,
            c=self.c[:n].cpu() if n else empty,
            g=self.g[:n].cpu() if n else empty,
            edited=self.edited[:n].clone() if n else torch.zeros(0, dtype=torch.bool),
            settings=settings,
            want=self.want[:n].clone(),
            changes=[dict(c) for c in self.changes],
        )


@contextmanager
def apply(backbone: Backbone, steers: Sequence[Steer], **options) -> Iterator[Steering]:
    """Steer every `generate` call made inside the block; yields the state holding the trace.

    options: every (schedule interval, default 1), rows ("both" | "cond"), gain
    ("switch" | "ramp"), cfg (whether generate runs with guidance_scale > 1), max_steps, duration
    (seconds of new audio: lanes past it are refused, a span ending there covers the last steps),
    owners (per steer, the batch sample it belongs to, None for all: per-request steering).
    """
    state = Steering(backbone, steers, **options)
    with ExitStack() as stack:
        if state.steers:
            stack.enter_context(backbone.decoder_steps(state.on_decoder_step))
            stack.enter_context(backbone.head_hooks(state.on_heads))
        yield state
