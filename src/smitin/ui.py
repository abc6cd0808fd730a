"""Steering studio: a local Gradio web UI to steer MusicGen and watch the probes while it generates.

`smitin ui` loads one model (the bundled one by default) and a set of probe files (by default
drum probes trained once on the bundled model from a small rendered stem set and cached under
~/.cache/smitin). Each browser session keeps its own settings in `gr.State`; generation requests
go through one queue, so one model in memory serves everyone without cross-talk.

The engine is not changed: the UI opens `steering.apply` itself around an unsteered
`generate`/`continue_audio` call (whose own `apply` then does nothing), which gives exactly the
CLI's result while a worker thread generates and the request thread reads the live
`Steering` buffers (c, g, edited) to redraw the monitor plot and decode a preview of the audio.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .backbone import BUNDLED, Backbone, ModelError, load
from .defaults import cache_dir, model_key, train_default_probes
from .generate import Result, continue_audio, generate, max_new_tokens
from .monitor import Trace
from .options import GenerationOptions
from .probes import ProbeFileError, ProbeSet
from .steering import Steer, Steering

if TYPE_CHECKING:  # matplotlib loads only when a figure is drawn: `smitin --help` stays quick
    from matplotlib.figure import Figure

MAX_TRAITS = 4  # strength-slider slots; more probe files than this are refused with a message
ALPHA_RANGE = 10.0
DEFAULT_ALPHA = 5.0
POLL_S = 0.5  # how often the request thread redraws the live plot
PREVIEW_FRAMES = 50  # decode the audio preview in chunks of at least this many new frames
PREVIEW_CONTEXT = 4  # frames of left context per chunk, dropped after decoding (smooths joins)


# -- per-session state (plain dicts: gr.State deep-copies them per browser session) -------------


def new_session(model: str, probe_paths: Sequence[str | Path] = ()) -> dict:
    """A session's settings that outlive one request: the model name and the loaded probe files."""
    session = {"model": str(model), "probes": []}
    return add_probes(session, probe_paths)[0]


def add_probes(session: dict, paths: Sequence[str | Path]) -> tuple[dict, list[str]]:
    """Return a new session with the readable probe files added (a trait loaded again is replaced).

    Messages say what was skipped and why; the given session is not modified.
    """
    probes = [dict(p) for p in session["probes"]]
    messages = []
    for raw in paths:
        path = str(raw).strip()
        if not path:
            continue
        try:
            trait = ProbeSet.load(path).trait
        except ProbeFileError as err:
            messages.append(str(err))
            continue
        probes = [p for p in probes if p["trait"] != trait]
        if len(probes) >= MAX_TRAITS:
            messages.append(f"{path}: at most {MAX_TRAITS} traits at once; clear some first")
            continue
        probes.append({"trait": trait, "path": path})
    return {**session, "probes": probes}, messages


def parse_paths(text: str) -> list[str]:
    """Paths typed one per line or separated by commas."""
    return [p.strip() for line in (text or "").splitlines() for p in line.split(",") if p.strip()]


def parse_threshold(text: str | float | None) -> float | None:
    """'' or 'auto' -> None (the paper's median(acc) - std(acc)); else a number in (0, 1)."""
    if text is None or str(text).strip().lower() in ("", "auto"):
        return None
    value = float(text)
    if not 0 < value < 1:
        raise ValueError(f"threshold must be between 0 and 1 (or 'auto'), not {value}")
    return value


def parse_heads(text: str | int | None) -> str | int:
    """'soft' (accuracy-weighted, the paper's) or a number K of best heads (plain ITI)."""
    if text is None or str(text).strip().lower() in ("", "soft"):
        return "soft"
    k = int(str(text).strip())
    if k < 1:
        raise ValueError(f"heads must be 'soft' or a positive number, not {k}")
    return k


def slider_updates(session: dict, previous: Sequence[float] = ()) -> list[dict]:
    """One update per slider slot: shown and named for each loaded trait, hidden otherwise."""
    out = []
    for i in range(MAX_TRAITS):
        if i < len(session["probes"]):
            trait = session["probes"][i]["trait"]
            value = previous[i] if i < len(previous) else DEFAULT_ALPHA
            out.append({"visible": True, "label": f"{trait}: remove (-) / add (+)", "value": value})
        else:
            out.append({"visible": False, "value": 0.0})
    return out


def probe_table(session: dict) -> str:
    """Markdown list of the session's probe files."""
    if not session["probes"]:
        return "No probe files loaded: generation runs unsteered. Upload one, or train one below."
    rows = [f"- **{p['trait']}**: `{p['path']}`" for p in session["probes"]]
    return "\n".join(rows)


def build_steers(
    probes: Sequence[ProbeSet],
    alphas: Sequence[float],
    *,
    monitor: bool = True,
    threshold: float | None = None,
    heads: str | int = "soft",
) -> list[Steer]:
    """One Steer per probe set; alpha 0 keeps the trait monitored (its C(t) is plotted) but unpushed."""
    return [
        Steer(p, alpha=float(a), heads=heads, monitor=monitor, threshold=threshold)
        for p, a in zip(probes, alphas, strict=False)
    ]


def unsteered(steers: Sequence[Steer]) -> list[Steer]:
    """The same traits with alpha 0: identical audio to no steering, and the natural C(t)."""
    return [replace(s, alpha=0.0) for s in steers]


# -- generation with a live view ------------------------------------------------------------


@dataclass
class Request:
    """Everything one generation needs besides the model and the steers."""

    prompt: str = ""
    audio_prompt: str | None = None
    options: GenerationOptions = field(default_factory=GenerationOptions)


def run_generation(
    backbone: Backbone,
    steers: Sequence[Steer],
    request: Request,
    on_start: Callable[[Steering], None] = lambda _state: None,
) -> Result:
    """Generate exactly as `smitin.generate`/`continue_audio`, handing the live state to `on_start`."""
    common = dict(steer=steers, options=request.options, progress=False, on_start=on_start)
    prompt = request.prompt or None
    if request.audio_prompt:
        result = continue_audio(backbone, request.audio_prompt, prompt=prompt, **common)
        result.trace.settings["audio_prompt"] = Path(request.audio_prompt).name
        return result
    return generate(backbone, prompt, **common)


def live_trace(state: Steering | None) -> Trace | None:
    """The trace so far (None before the first step); safe to call while the model runs."""
    if state is None or state.rows_n is None or not state.steers:
        return None
    return state.trace()


class Cancelled(Exception):
    """Raised inside the model's forward pass to stop a generation nobody waits for any more."""


class CodeRecorder:
    """Records the tokens fed to the decoder at each step and undoes the delay pattern.

    Step inputs are the previous step's samples, so `frames()` lags one step behind; enough for
    a preview. Only the first sample's conditional row is kept. Setting `cancel` stops the
    generation at its next step (the engine's context managers then remove their hooks).
    """

    def __init__(self, backbone: Backbone, capacity: int) -> None:
        self.k = backbone.num_codebooks
        self.ids = torch.full((self.k, capacity), -1, dtype=torch.long)
        self.length = 0
        self.cancel = threading.Event()
        self._backbone = backbone

    @contextmanager
    def recording(self) -> Iterator[CodeRecorder]:
        def hook(past: int, ids: torch.Tensor | None) -> None:
            if self.cancel.is_set():
                raise Cancelled("generation stopped")
            if ids is None:
                return
            if past == 0:
                self.length = 0  # a new generation starts
            end = min(past + ids.shape[1], self.ids.shape[1])
            if end > past:
                self.ids[:, past:end] = ids[: self.k, : end - past].detach().cpu()
                self.length = max(self.length, end)

        with self._backbone.decoder_steps(hook):
            yield self

    def frames(self) -> torch.Tensor:
        """Codes [K, frames] complete so far: codebook k of frame f sits at position f + 1 + k."""
        n = max(0, self.length - self.k)
        return torch.stack([self.ids[k, 1 + k : 1 + k + n] for k in range(self.k)])


class Preview:
    """Decodes recorded codes in chunks and keeps the concatenated audio."""

    def __init__(self, backbone: Backbone) -> None:
        self.backbone = backbone
        self.hop = round(backbone.sample_rate / backbone.frame_rate)
        self.done = 0
        self.chunks: list[np.ndarray] = []

    def update(self, codes: torch.Tensor, final: bool = False) -> np.ndarray | None:
        """Decode the frames past the last chunk if there are enough; the audio so far, or None."""
        n = codes.shape[1]
        if n - self.done < (1 if final else PREVIEW_FRAMES):
            return None
        start = max(0, self.done - PREVIEW_CONTEXT)
        audio = self.backbone.decode(codes[None, :, start:n])[0].numpy()
        self.chunks.append(audio[(self.done - start) * self.hop :])
        self.done = n
        return np.concatenate(self.chunks)


def pcm16(audio: np.ndarray) -> np.ndarray:
    """Float audio -> int16, as Gradio would (saying so in a warning) for a numpy player value."""
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16)


# -- figures (the OO API: pyplot's global state is not thread-safe) ---------------------------------


def trace_figure(
    steered_trace: Trace | None, reference: Trace | None = None, total_seconds: float | None = None
) -> Figure:
    """C(t) per trait, threshold, edit ticks; the unsteered run's C(t) dotted for comparison."""
    from matplotlib.figure import Figure

    from . import plots

    fig = Figure(figsize=(8, 3.2))
    ax = fig.add_subplot()
    if steered_trace is not None and len(steered_trace.c):
        plots.trace(steered_trace, ax)
    else:
        ax.set_title("monitor: waiting for the first step")
        ax.set_ylim(-0.2, 1.02)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("probe value C")
    if reference is not None and len(reference.c):
        t = np.arange(len(reference.c)) / reference.frame_rate
        for i, name in enumerate(reference.traits):
            ax.plot(t, reference.c[:, 0, i].numpy(), ls=":", color=f"C{i}", label=f"{name} C(t) unsteered")
        ax.legend(loc="upper right", fontsize=7)
    if total_seconds:
        ax.set_xlim(0, total_seconds)
    fig.tight_layout()
    return fig


def heatmap_figure(probes: Sequence[ProbeSet]) -> Figure | None:
    """The layer x head accuracy map of each probe file, stacked."""
    if not probes:
        return None
    from matplotlib.figure import Figure

    from . import plots

    fig = Figure(figsize=(7, 3.2 * len(probes)))
    for i, p in enumerate(probes):
        plots.heatmap(p, fig.add_subplot(len(probes), 1, i + 1))
    fig.tight_layout()
    return fig


def spectrogram_figure(named_audio: Sequence[tuple[str, np.ndarray]], sample_rate: int) -> Figure:
    from matplotlib.figure import Figure

    from . import plots

    fig = Figure(figsize=(8, 2.6 * len(named_audio)))
    for i, (name, audio) in enumerate(named_audio):
        plots.spectrogram(audio, sample_rate, fig.add_subplot(len(named_audio), 1, i + 1), title=name)
    fig.tight_layout()
    return fig


# -- the one model in memory -----------------------------------------------------------------------


class ModelHolder:
    """Holds one loaded model for all sessions; a request for another swaps it.

    `busy` is held by whoever runs the model (generation, training). It is a plain Lock, not an
    RLock: Gradio may resume a generator handler on another thread, and a plain Lock may be
    released from any thread.
    """

    def __init__(self, device: str = "cpu", dtype: str | None = None) -> None:
        self.device, self.dtype = device, dtype
        self.lock = threading.Lock()  # guards loading
        self.busy = threading.Lock()  # guards use
        self.name: str | None = None
        self.backbone: Backbone | None = None

    def get(self, name: str) -> Backbone:
        name = (name or BUNDLED).strip() or BUNDLED
        with self.lock:
            if self.backbone is None or self.name != name:
                self.backbone = None  # free the old one before loading the next
                self.backbone = load(name, device=self.device, dtype=self.dtype)
                self.name = name
            return self.backbone


# -- the app -----------------------------------------------------------------------------------------


INTRO = """# smitin steering studio
Steer the music model toward or away from a trait while it generates. Each trait's probes read
the model's attention heads; with **self-monitoring** on, the push stops while the probes
already hear the trait (C(t) above the dashed threshold) and resumes when it fades.
"""

STREAM_NOTE = (
    "The live preview re-decodes the codes generated so far in chunks of about a second. It is "
    "replaced at each update rather than played as a gapless stream: Gradio's streaming audio "
    "player needs ffmpeg, which smitin does not require."
)


def _with_status(fn):
    """Turn library errors into a message in the browser instead of a stack trace."""
    import functools

    import gradio as gr

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            result = fn(*args, **kwargs)
            if hasattr(result, "__next__"):
                yield from result
            else:
                yield result
        except (ModelError, ProbeFileError, ValueError, OSError) as err:
            raise gr.Error(str(err)) from err

    return wrapper


def build_app(holder: ModelHolder, session0: dict, *, startup_note: str = ""):
    """The Gradio Blocks app; `session0` is each new browser session's initial state."""
    import gradio as gr

    def load_probe_sets(session: dict, backbone: Backbone | None = None) -> list[ProbeSet]:
        return [ProbeSet.load(p["path"], backbone) for p in session["probes"]]

    def refresh(session: dict, *alphas):
        """Probe list, sliders and heatmaps after the session's probe files changed."""
        sets = load_probe_sets(session)
        updates = [gr.update(**u) for u in slider_updates(session, alphas)]
        return (session, probe_table(session), heatmap_figure(sets), *updates)

    def on_upload(session, files, *alphas):
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]
        session, messages = add_probes(session, paths)
        for m in messages:
            gr.Warning(m)
        return refresh(session, *alphas)

    def on_paths(session, text, *alphas):
        session, messages = add_probes(session, parse_paths(text))
        for m in messages:
            gr.Warning(m)
        return refresh(session, *alphas)

    def on_clear(session, *alphas):
        return refresh({**session, "probes": []}, *alphas)

    def on_model(session, name):
        name = (name or BUNDLED).strip() or BUNDLED
        with holder.busy:
            backbone = holder.get(name)
        info = backbone.describe()
        text = f"model **{name}**: {info['layout']}, {info['sample_rate']} Hz"
        return {**session, "model": name}, text

    def on_train(session, folder, trait, *alphas, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
        from . import data
        from .probes import fit_cached

        if not folder or not trait:
            raise gr.Error("give a stem folder and a trait name (e.g. drums)")
        with holder.busy:
            backbone = holder.get(session["model"])
            progress(0, desc="reading stems")
            segments = data.stem_segments(Path(folder).expanduser(), trait, sample_rate=backbone.sample_rate)
            key = f"{trait}-{model_key(backbone)}-{segments.fingerprint()[:12]}"
            out = cache_dir() / "probes" / f"{key}.safetensors"
            probes = fit_cached(backbone, segments, out, cache_dir=cache_dir() / "activations" / key)
        session, messages = add_probes(session, [out])
        for m in messages:
            gr.Warning(m)
        gr.Info(f"trained {trait} probes (best head accuracy {float(probes.accuracy.max()):.2f}): {out}")
        return refresh(session, *alphas)

    def on_generate(
        session,
        prompt,
        audio_prompt,
        duration,
        seed,
        guidance,
        every,
        rows,
        gain,
        monitor,
        threshold,
        heads,
        compare,
        preview_on,
        *alphas,
    ):
        options = GenerationOptions(
            duration=float(duration),
            seed=int(seed),
            guidance_scale=float(guidance),
            every=int(every),
            rows=rows,
            gain=gain,
        )
        request = Request(prompt=prompt or "", audio_prompt=audio_prompt or None, options=options)
        threshold_v, heads_v = parse_threshold(threshold), parse_heads(heads)
        skip = gr.skip()
        with holder.busy:  # one generation on the shared model at a time
            backbone = holder.get(session["model"])
            steers = build_steers(
                load_probe_sets(session, backbone),
                alphas,
                monitor=monitor,
                threshold=threshold_v,
                heads=heads_v,
            )
            total = request.options.duration + (backbone.num_codebooks - 1) / backbone.frame_rate
            runs = [("unsteered", unsteered(steers))] if compare else []
            runs.append(("steered", steers))
            results: dict[str, Result] = {}
            for name, run_steers in runs:
                box: dict = {}
                recorder = CodeRecorder(backbone, max_new_tokens(backbone, request.options.duration) + 4096)
                preview = Preview(backbone)

                def work(run_steers=run_steers, box=box, recorder=recorder):
                    try:
                        with recorder.recording():
                            box["result"] = run_generation(
                                backbone, run_steers, request, lambda s: box.__setitem__("state", s)
                            )
                    except BaseException as exc:  # handed to the request thread
                        box["error"] = exc

                worker = threading.Thread(target=work, name=f"smitin-ui-{name}", daemon=True)
                t0 = time.perf_counter()
                worker.start()
                reference = results.get("unsteered")
                try:
                    first = True  # one update as the run starts, then one per poll while it runs
                    while first or worker.is_alive():
                        if not first:
                            worker.join(POLL_S)
                        first = False
                        state = box.get("state")
                        tr = live_trace(state)
                        steps = state.steps_seen if state is not None and state.rows_n is not None else 0
                        frames = recorder.frames()
                        audio = preview.update(frames) if preview_on and worker.is_alive() else None
                        yield (
                            f"generating {name}: step {steps} / {max_new_tokens(backbone, request.options.duration)} "
                            f"({time.perf_counter() - t0:.1f} s)",
                            trace_figure(
                                tr if name == "steered" else None, reference.trace if reference else tr, total
                            )
                            if steers
                            else skip,
                            (backbone.sample_rate, pcm16(audio)) if audio is not None else skip,
                            skip,
                            skip,
                            skip,
                            skip,
                        )
                finally:  # stopped or disconnected: end the run before the model is free again
                    if worker.is_alive():
                        recorder.cancel.set()
                        worker.join()
                if "error" in box:
                    err = box["error"]
                    if isinstance(err, (ModelError, ProbeFileError, ValueError, OSError)):
                        raise gr.Error(str(err))
                    raise err
                results[name] = box["result"]
                results[name].trace.settings["seconds_taken"] = round(time.perf_counter() - t0, 2)
        out = Path(tempfile.mkdtemp(prefix="smitin-ui-"))
        files, named = [], []
        for name, result in results.items():
            wav = result.save(out / f"{name}.wav", out / f"{name}-trace.json")[0]
            files += [str(wav), str(out / f"{name}-trace.json")]
            named.append((name, result.audio[0]))
        steered_r, ref = results["steered"], results.get("unsteered")
        shares = steered_r.trace.share_applied()
        summary = (
            ", ".join(f"{s.name} (alpha {s.alpha:+g}): edit on {shares[s.name]:.0%} of steps" for s in steers)
            or "no traits"
        )
        times = ", ".join(f"{n} {r.trace.settings['seconds_taken']} s" for n, r in results.items())
        yield (
            f"done ({times}). {summary}.",
            trace_figure(steered_r.trace, ref.trace if ref else None, total),
            (backbone.sample_rate, pcm16(steered_r.audio[0])),
            files[0] if ref else None,
            files[-2],
            spectrogram_figure(named, backbone.sample_rate),
            files,
        )

    with gr.Blocks(title="smitin steering studio", analytics_enabled=False) as demo:
        session = gr.State(session0)
        gr.Markdown(INTRO + (f"\n\n{startup_note}" if startup_note else ""))
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                with gr.Accordion("Model", open=False):
                    model_box = gr.Textbox(
                        value=session0["model"],
                        label="model: bundled, a hub id (facebook/musicgen-small) or a local folder",
                    )
                    model_btn = gr.Button("Load model")
                    model_info = gr.Markdown()
                with gr.Accordion("Probe files", open=True):
                    probe_list = gr.Markdown(probe_table(session0), elem_id="probe-list")
                    upload = gr.File(
                        file_count="multiple", file_types=[".safetensors"], label="upload probe files"
                    )
                    paths_box = gr.Textbox(label="or paths on this machine (one per line)", lines=1)
                    with gr.Row():
                        paths_btn = gr.Button("Load paths")
                        clear_btn = gr.Button("Clear probes")
                    with gr.Accordion("Train probes from a stem folder", open=False):
                        folder_box = gr.Textbox(label="stem folder (DIR/<track>/<stem>.wav, MUSDB, ...)")
                        trait_box = gr.Textbox(value="drums", label="trait (stem family)")
                        train_btn = gr.Button("Train probes")
                gr.Markdown("### Strength per trait")
                sliders = []
                for i, u in enumerate(slider_updates(session0)):
                    sliders.append(
                        gr.Slider(
                            -ALPHA_RANGE,
                            ALPHA_RANGE,
                            value=u["value"],
                            step=0.5,
                            label=u.get("label", f"trait {i + 1}"),
                            visible=u["visible"],
                            elem_id=f"alpha-{i}",
                        )
                    )
                with gr.Accordion("Steering options", open=False):
                    monitor = gr.Checkbox(value=True, label="self-monitoring (SMITIN); off = plain ITI")
                    threshold = gr.Textbox(value="auto", label="monitor threshold (auto = median - std)")
                    heads = gr.Textbox(value="soft", label="heads: soft (weighted) or K best")
                    every = gr.Slider(1, 20, value=5, step=1, label="intervene every N steps")
                    rows = gr.Radio(["both", "cond"], value="both", label="CFG rows to edit")
                    gain = gr.Radio(["switch", "ramp"], value="switch", label="monitor response")
            with gr.Column(scale=2):
                prompt = gr.Textbox(label="text prompt (empty: unconditional)", elem_id="prompt")
                audio_prompt = gr.Audio(type="filepath", sources=["upload"], label="audio prompt to continue")
                with gr.Row():
                    duration = gr.Slider(0.5, 30, value=5, step=0.5, label="duration (s)", elem_id="duration")
                    seed = gr.Number(value=0, precision=0, label="seed")
                    guidance = gr.Slider(1, 10, value=3, step=0.5, label="guidance (CFG) scale")
                with gr.Row():
                    compare = gr.Checkbox(value=True, label="also generate unsteered (same seed)")
                    preview_on = gr.Checkbox(value=True, label="live audio preview")
                with gr.Row():
                    go = gr.Button("Generate", variant="primary", elem_id="generate")
                    stop = gr.Button("Stop", elem_id="stop")
                status = gr.Markdown(elem_id="status")
                live = gr.Plot(label="monitor C(t): live", elem_id="trace-plot")
                preview_audio = gr.Audio(label="live preview", elem_id="preview", interactive=False)
                gr.Markdown(STREAM_NOTE)
                with gr.Row():
                    audio_ref = gr.Audio(label="unsteered", elem_id="unsteered", interactive=False)
                    audio_out = gr.Audio(label="steered", elem_id="steered", interactive=False)
                spec = gr.Plot(label="spectrograms")
                files = gr.File(
                    label="downloads: WAV and trace JSON",
                    file_count="multiple",
                    elem_id="files",
                    interactive=False,
                )
                heatmap = gr.Plot(heatmap_figure(load_probe_sets(session0)), label="probe accuracy")

        listing = [session, probe_list, heatmap, *sliders]
        model_lane = {"concurrency_id": "model", "concurrency_limit": 1}
        upload.upload(on_upload, [session, upload, *sliders], listing)
        paths_btn.click(on_paths, [session, paths_box, *sliders], listing)
        clear_btn.click(on_clear, [session, *sliders], listing)
        model_btn.click(on_model, [session, model_box], [session, model_info], **model_lane)
        train_btn.click(on_train, [session, folder_box, trait_box, *sliders], listing, **model_lane)
        gen_inputs = [session, prompt, audio_prompt, duration, seed, guidance, every, rows, gain]
        gen_inputs += [monitor, threshold, heads, compare, preview_on, *sliders]
        gen_outputs = [status, live, preview_audio, audio_ref, audio_out, spec, files]
        running = go.click(_with_status(on_generate), gen_inputs, gen_outputs, **model_lane)
        stop.click(None, None, None, cancels=[running])
    demo.queue(default_concurrency_limit=1)
    return demo


# -- command line ------------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--port", type=int, default=7860, help="port on localhost (default 7860; 0 picks a free one)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--model",
        default=BUNDLED,
        help="model to preload: 'bundled' (default), a hub id or a save_pretrained folder",
    )
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--dtype", default=None, help="weights dtype, e.g. float16 on a GPU")
    p.add_argument(
        "--probes",
        nargs="*",
        type=Path,
        default=None,
        metavar="FILE",
        help="probe files to preload (default: drum probes trained once on the bundled model and cached)",
    )
    p.add_argument(
        "--share",
        choices=("no", "yes"),
        default="no",
        help="'yes' asks Gradio for a public link (needs internet; default no)",
    )
    p.add_argument(
        "--cache", type=Path, default=None, help="cache folder (default $SMITIN_CACHE or ~/.cache/smitin)"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def prepare(args: argparse.Namespace, log: Callable[[str], None] = print) -> tuple[ModelHolder, dict, str]:
    """Load the model and the probes the app starts with (training default probes if needed)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if args.cache:
        os.environ["SMITIN_CACHE"] = str(args.cache)
    holder = ModelHolder(args.device, args.dtype)
    log(f"loading model {args.model}")
    backbone = holder.get(args.model)
    note = ""
    if args.probes is not None:
        paths = [str(p) for p in args.probes]
        for p in paths:
            ProbeSet.load(p, backbone)  # fail early on a bad or foreign file
    elif args.model == BUNDLED:
        try:
            paths = [str(train_default_probes(backbone))]
        except Exception as err:  # no renderer, disk full...: the studio still works, unsteered
            note = f"Default drum probes could not be trained ({err}); load or train probe files."
            log(f"warning: {note}")
            paths = []
    else:
        paths = []
        note = "No probe files given: load probe files trained for this model, or train them below."
    return holder, new_session(args.model, paths), note


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    holder, session0, note = prepare(args)
    demo = build_app(holder, session0, startup_note=note)
    port = args.port or free_port(args.host)
    print(f"steering studio on http://{args.host}:{port} (Ctrl-C stops it)")
    demo.launch(server_name=args.host, server_port=port, share=args.share == "yes", show_error=True)
    return 0
