"""The Gradio app: the one model in memory, the page, and what its buttons do.

Each browser session keeps its own `Session` in `gr.State`; one model in memory serves everyone
without cross-talk. The Generate button is a `GenerateHandler`: many run at once, each submits its
user's runs to the model's `Batcher` (which runs the requests that arrive together as one mixed
batch) and turns what its own tickets show into page updates. Loading a model and training probes
go through one queue lane and hold the model while they run.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from ..backbone import BUNDLED, Backbone, ModelError, load
from ..defaults import cache_dir, model_key
from ..generate import Result, check_request
from ..probes import ProbeFileError
from ..recipes import DEFAULT_RECIPE, RECIPES, parse_heads
from ..steering import Steer
from .batcher import BATCH_WINDOW_S, Batcher, Submission, Ticket
from .figures import heatmap_figure, spectrogram_figure, trace_figure
from .files import train_paths
from .live import Preview, Request, pcm16
from .session import (
    ALPHA_RANGE,
    Session,
    add_probes,
    build_steers,
    lanes_message,
    load_probe_sets,
    page_options,
    parse_lanes,
    parse_paths,
    parse_threshold,
    probe_table,
    slider_updates,
    unsteered,
)

POLL_S = 0.5  # how often the request thread redraws the live plot
KEEP_GENERATIONS = 8  # generations whose files stay on disk; Gradio serves its own copy of each
MAX_USERS = 16  # Generate handlers running at once (they wait on the batcher, not on each other)

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

# What Generate updates: status, live plot, preview, unsteered audio, steered audio, spectrograms, files.
Outputs = tuple[Any, Any, Any, Any, Any, Any, Any]


class ModelHolder:
    """Holds one loaded model for all sessions; a request for another swaps it.

    `busy` is held by whoever runs the model (a batch of generations, training). It is a plain
    Lock, not an RLock: Gradio may resume a generator handler on another thread, and a plain Lock
    may be released from any thread. `batcher` runs the generations, in batches of the requests
    that arrive within `batch_window_s` of each other or while the model is busy.
    """

    def __init__(
        self, device: str = "cpu", dtype: str | None = None, batch_window_s: float = BATCH_WINDOW_S
    ) -> None:
        self.device, self.dtype = device, dtype
        self.lock = threading.Lock()  # guards loading
        self.busy = threading.Lock()  # guards use
        self.name: str | None = None
        self.backbone: Backbone | None = None
        self.batcher = Batcher(self.busy, window_s=batch_window_s)

    def loaded(self, name: str) -> Backbone | None:
        """The model if `name` is the one in memory (no wait on a running batch), else None."""
        name = (name or BUNDLED).strip() or BUNDLED
        with self.lock:
            return self.backbone if self.name == name else None

    def get(self, name: str) -> Backbone:
        name = (name or BUNDLED).strip() or BUNDLED
        with self.lock:
            if self.backbone is None or self.name != name:
                self.backbone = None  # free the old one before loading the next
                self.backbone = load(name, device=self.device, dtype=self.dtype)
                self.name = name
            return self.backbone


class Downloads:
    """One temporary folder for the WAV and trace files of every generation in this app.

    Each generation writes into a numbered sub-folder (`0001/steered.wav`), so two sessions never
    overwrite each other's files, and only the newest `keep` generations stay on disk. The folder
    (`smitin-ui-*` in the system's temporary folder) is made on first use and removed by `close`,
    when this object is garbage-collected, or at interpreter exit.
    """

    def __init__(self, keep: int = KEEP_GENERATIONS) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.keep = keep
        self.root: Path | None = None
        self._count = 0
        self._lock = threading.Lock()
        self._cleanup: weakref.finalize | None = None

    def new(self) -> Path:
        """A fresh, empty folder for one generation's files; older generations beyond `keep` go."""
        with self._lock:
            if self.root is None or not self.root.is_dir():
                self.root = Path(tempfile.mkdtemp(prefix="smitin-ui-"))
                self._cleanup = weakref.finalize(self, shutil.rmtree, self.root, ignore_errors=True)
            self._count += 1
            folder = self.root / f"{self._count:04d}"
            folder.mkdir()
            for old in self.root.iterdir():
                if old.name.isdigit() and int(old.name) <= self._count - self.keep:
                    shutil.rmtree(old, ignore_errors=True)
            return folder

    def close(self) -> None:
        """Remove the folder and everything in it (a later `new` makes another)."""
        with self._lock:
            if self._cleanup is not None:
                self._cleanup()
            self.root, self._cleanup = None, None


def _with_status(fn: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
    """Turn library errors into a message in the browser instead of a stack trace."""

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


class GenerateHandler:
    """The Generate button: the user's unsteered run (when comparing) and steered run, watched live.

    A call is a generator of page updates. It submits the runs to the model's `Batcher` (two
    requests of one batch, same prompt and seed, or of a bigger batch with other users' requests)
    and shows its own tickets: status, live C(t) plot, audio preview. When the page stops it
    (Stop, a closed tab), the user is detached: the batch is cancelled, and waited for, only when
    nobody else waits for it. The results are saved as WAV and trace JSON at the end, in
    `downloads` (one folder for the app, a numbered sub-folder per generation).
    """

    def __init__(
        self, holder: ModelHolder, poll_s: float = POLL_S, downloads: Downloads | None = None
    ) -> None:
        self.holder = holder
        self.poll_s = poll_s
        self.downloads = downloads if downloads is not None else Downloads()

    def __call__(
        self,
        session: Session,
        prompt: str | None,
        audio_prompt: str | None,
        duration: float,
        seed: int,
        guidance: float,
        every: int,
        rows: str,
        gain: str,
        monitor: bool,
        threshold: str | None,
        heads: str | None,
        direction: str,
        compare: bool,
        preview_on: bool,
        lanes_text: str | None,
        *alphas: float,
    ) -> Iterator[Outputs]:
        options = page_options(duration, seed, guidance, every, rows, gain)  # the CLI's bounds
        request = Request(prompt=prompt or "", audio_prompt=audio_prompt or None, options=options)
        threshold_v, heads_v = parse_threshold(threshold), parse_heads(heads)
        traits = [p.trait for p in session.probes]
        strengths = dict(zip(traits, alphas, strict=False))
        lanes = parse_lanes(lanes_text, traits, options.duration, strengths)  # a bad lane: a message
        backbone = self.holder.loaded(session.model)
        if backbone is None:  # another model: load it once the model is free
            with self.holder.busy:
                backbone = self.holder.get(session.model)
        sets = load_probe_sets(session, backbone)
        steers = build_steers(
            sets,
            alphas,
            monitor=monitor,
            threshold=threshold_v,
            heads=heads_v,
            direction=direction,
            lanes=lanes,
        )
        if request.audio_prompt is None:  # refused here, it never joins (and fails) a batch
            check_request(backbone, steers, options)
        total = options.duration + (backbone.num_codebooks - 1) / backbone.frame_rate
        runs = [("unsteered", unsteered(steers))] if compare else []
        runs.append(("steered", steers))
        submission = self.holder.batcher.submit(backbone, request, runs)
        results = yield from self._watch(submission, bool(steers), preview_on, total, lanes)
        yield self._finish(backbone, steers, results, total, lanes)

    def _watch(
        self,
        submission: Submission,
        plot: bool,
        preview_on: bool,
        total: float,
        lanes: dict | None = None,
    ) -> Generator[Outputs, None, dict[str, Result]]:
        """Yield one update at once and one per poll until the runs end; their Results by name."""
        skip = gr.skip()
        tickets = {t.name: t for t in submission.tickets}
        steered, reference = tickets["steered"], tickets.get("unsteered")
        previews = {name: Preview(t.backbone) for name, t in tickets.items()}
        try:
            first = True
            while first or steered.alive:  # a submission's runs all end with its batch
                if not first:
                    steered.wait(self.poll_s)
                first = False
                started = [t.pass_ for t in tickets.values() if t.pass_ is not None]
                running = [t for t in tickets.values() if started and t.pass_ is started[-1]]
                shown = steered if steered in running else (running[0] if running else None)
                audio = None
                if preview_on and shown is not None and shown.alive:
                    audio = previews[shown.name].update(shown.frames())
                figure = (
                    trace_figure(
                        steered.trace(),
                        reference.trace() if reference else None,
                        total,
                        lanes,
                    )
                    if plot
                    else skip
                )
                sound = (steered.backbone.sample_rate, pcm16(audio)) if audio is not None else skip
                yield (_live_status(running, self.holder.batcher), figure, sound, skip, skip, skip, skip)
        finally:  # stopped or disconnected: detach (and end the batch if nobody else waits for it)
            submission.stop()
        return {name: t.result() for name, t in tickets.items()}

    def _finish(
        self,
        backbone: Backbone,
        steers: Sequence[Steer],
        results: dict[str, Result],
        total: float,
        lanes: dict | None = None,
    ) -> Outputs:
        """Save each run as WAV and trace JSON (in this app's downloads folder); the final page update."""
        out = self.downloads.new()
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
        size = steered_r.trace.settings.get("batch_requests", 1)
        batch = f"; one batch of {size} requests" if size > 1 else ""
        return (
            f"done ({times}{batch}). {summary}.",
            trace_figure(steered_r.trace, ref.trace if ref else None, total, lanes),
            (backbone.sample_rate, pcm16(steered_r.audio[0])),
            files[0] if ref else None,
            files[-2],
            spectrogram_figure(named, backbone.sample_rate),
            files,
        )


def _live_status(running: Sequence[Ticket], batcher: Batcher) -> str:
    """What the page says while a generation waits or runs."""
    if not running:
        queued = batcher.waiting
        return "waiting for the model" + (f" ({queued} submissions queued)" if queued > 1 else "")
    t = running[0]
    names = " + ".join(r.name for r in running)
    batch = f"; batch of {t.batch_requests} requests" if t.batch_requests > 1 else ""
    return f"generating {names}: step {t.steps} / {t.total_steps} ({t.elapsed:.1f} s{batch})"


def build_app(holder: ModelHolder, session0: Session, *, startup_note: str = "") -> gr.Blocks:
    """The Gradio Blocks app; `session0` is each new browser session's initial state."""

    def refresh(session: Session, *alphas):
        """Probe list, sliders and heatmaps after the session's probe files changed."""
        sets = load_probe_sets(session)
        updates = [gr.update(**u) for u in slider_updates(session, alphas)]
        return (session, probe_table(session), heatmap_figure(sets), *updates)

    def added(session: Session, paths: Sequence[str | Path]) -> Session:
        """The session with `paths` added; what was skipped is said in a warning."""
        session, messages = add_probes(session, paths)
        for m in messages:
            gr.Warning(m)
        return session

    def on_upload(session, files, *alphas):
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]
        return refresh(added(session, paths), *alphas)

    def on_paths(session, text, *alphas):
        return refresh(added(session, parse_paths(text)), *alphas)

    def on_clear(session, *alphas):
        return refresh(session.cleared(), *alphas)

    def on_model(session, name):
        name = (name or BUNDLED).strip() or BUNDLED
        with holder.busy:
            backbone = holder.get(name)
        info = backbone.describe()
        return session.with_model(name), f"model **{name}**: {info['layout']}, {info['sample_rate']} Hz"

    def on_train(session, folder, trait, *alphas, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
        from .. import data
        from ..probes import fit_cached

        if not folder or not trait:
            raise gr.Error("give a stem folder and a trait name (e.g. drums)")
        with holder.busy:
            backbone = holder.get(session.model)
            progress(0, desc="reading stems")
            segments = data.stem_segments(Path(folder).expanduser(), trait, sample_rate=backbone.sample_rate)
            # the typed name never becomes a path: a slug, checked to stay inside the cache
            out, activations = train_paths(cache_dir(), trait, model_key(backbone), segments.fingerprint())
            probes = fit_cached(backbone, segments, out, cache_dir=activations)
        session = added(session, [out])
        gr.Info(f"trained {trait} probes (best head accuracy {float(probes.accuracy.max()):.2f}): {out}")
        return refresh(session, *alphas)

    with gr.Blocks(title="smitin steering studio", analytics_enabled=False) as demo:
        session = gr.State(session0)
        gr.Markdown(INTRO + (f"\n\n{startup_note}" if startup_note else ""))
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                with gr.Accordion("Model", open=False):
                    model_box = gr.Textbox(
                        value=session0.model,
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
                    threshold = gr.Textbox(
                        value=str(RECIPES[DEFAULT_RECIPE].threshold),
                        label="monitor threshold (positive = C at the class mean, smitin's; paper = median - std; or 0-1)",
                    )
                    heads = gr.Textbox(
                        value=str(RECIPES[DEFAULT_RECIPE].heads),
                        label="heads: K best at weight 1 (smitin's recipe: 16) or soft (the paper's)",
                    )
                    direction = gr.Radio(
                        ["mass_mean", "probe"],
                        value=RECIPES[DEFAULT_RECIPE].direction,
                        label="direction: class-mean difference (smitin's recipe) or probe weights (the paper's)",
                    )
                    every = gr.Slider(
                        1,
                        20,
                        value=RECIPES[DEFAULT_RECIPE].every,
                        step=1,
                        label="intervene every N steps (smitin's recipe: 1; the paper's: 5)",
                    )
                    rows = gr.Radio(["both", "cond"], value="both", label="CFG rows to edit")
                with gr.Accordion("Trait automation (lanes)", open=False):
                    lanes_box = gr.Textbox(
                        value="",
                        lines=2,
                        label="one lane per line, e.g. drums=0-3:remove,3-6:add,6-8:free "
                        "(seconds of new audio; add / remove / free; optional ,ramp=0.5)",
                        elem_id="lanes",
                    )
                    lanes_note = gr.Markdown("no lanes: every trait is steered for the whole clip")
                    gain = gr.Radio(["switch", "ramp"], value="switch", label="monitor response")
            with gr.Column(scale=2):
                prompt = gr.Textbox(label="text prompt (empty: unconditional)", elem_id="prompt")
                audio_prompt = gr.Audio(type="filepath", sources=["upload"], label="audio prompt to continue")
                with gr.Row():
                    duration = gr.Slider(0.5, 30, value=5, step=0.5, label="duration (s)", elem_id="duration")
                    seed = gr.Number(value=0, precision=0, label="seed", elem_id="seed")
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
        model_lane: dict[str, Any] = {"concurrency_id": "model", "concurrency_limit": 1}
        upload.upload(on_upload, [session, upload, *sliders], listing)
        paths_btn.click(on_paths, [session, paths_box, *sliders], listing)
        clear_btn.click(on_clear, [session, *sliders], listing)
        model_btn.click(on_model, [session, model_box], [session, model_info], **model_lane)
        train_btn.click(on_train, [session, folder_box, trait_box, *sliders], listing, **model_lane)
        gen_inputs = [session, prompt, audio_prompt, duration, seed, guidance, every, rows, gain]
        gen_inputs += [monitor, threshold, heads, direction, compare, preview_on, lanes_box, *sliders]

        def on_lanes(session: Session, text: str, duration_s: float) -> str:
            return lanes_message(text, [p.trait for p in session.probes], float(duration_s))

        for trigger in (lanes_box.change, duration.change):  # checked as it is typed
            trigger(on_lanes, [session, lanes_box, duration], lanes_note, queue=False)
        gen_outputs = [status, live, preview_audio, audio_ref, audio_out, spec, files]
        on_generate = _with_status(GenerateHandler(holder))
        users: dict[str, Any] = {"concurrency_id": "generate", "concurrency_limit": MAX_USERS}
        running = go.click(on_generate, gen_inputs, gen_outputs, api_name="on_generate", **users)
        stop.click(None, None, None, cancels=[running])
    demo.queue(default_concurrency_limit=1)
    return demo
