"""The Gradio app's page: its layout, and which handler each control calls.

Each browser session keeps its own `Session` in `gr.State`; one model in memory (`holder`)
serves everyone without cross-talk. The Generate button is a `handlers.GenerateHandler`: many
run at once, each submits its user's runs to the model's `Batcher`. Loading a model and training
probes go through one queue lane and hold the model while they run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from ..backbone import BUNDLED
from ..defaults import cache_dir, model_key
from ..recipes import DEFAULT_RECIPE, RECIPES
from .figures import heatmap_figure
from .files import train_paths
from .handlers import GenerateHandler, with_status
from .holder import Downloads, ModelHolder
from .session import (
    ALPHA_RANGE,
    Session,
    add_probes,
    lanes_message,
    load_probe_sets,
    parse_paths,
    probe_table,
    slider_updates,
)

__all__ = ["Downloads", "GenerateHandler", "ModelHolder", "build_app"]

MAX_USERS = 16  # Generate handlers running at once (they wait on the batcher, not on each other)

INTRO = """# smitin steering studio
Steer the music model toward or away from a trait while it generates. Each trait's probes read
the model's attention heads; with **self-monitoring** on, the push stops while the probes
already hear the trait (C(t) above the dashed threshold) and resumes when it fades.
"""

LIVE_NOTE = (
    "**Live:** the stream plays while the model makes it (a second ahead of you). Move a strength "
    "slider, switch the monitor or apply lanes while it plays: the change takes effect at the "
    "model's next step, is marked in the C(t) plot and recorded in the trace. Stop keeps what was "
    "made (downloads below). Endless goes on past the model's length, continuing its last "
    "seconds, until Stop."
)


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
                        ["auto", "probe", "mass_mean", "denoised"],
                        value=RECIPES[DEFAULT_RECIPE].direction,
                        label="direction: auto (smitin's: class mean unless noise moves it, then probe weights), "
                        "probe weights (the paper's), class-mean difference (ITI's), or that difference blind to noise",
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
                        label="one lane per line, e.g. drums=0-3:remove,3-6:add,6-8:free or piano=0-8:keep "
                        "(seconds of new audio; add / remove / free / keep: hold, push only if it fades; "
                        "optional ,ramp=0.5)",
                        elem_id="lanes",
                    )
                    lanes_note = gr.Markdown("no lanes: every trait is steered for the whole clip")
                    lanes_now = gr.Button("Apply lanes to the running generation", elem_id="lanes-now")
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
                    stream_on = gr.Checkbox(value=True, label="play while it is made (live stream)")
                    endless = gr.Checkbox(
                        value=False, label="endless: keep going until Stop", elem_id="endless"
                    )
                with gr.Row():
                    go = gr.Button("Generate", variant="primary", elem_id="generate")
                    stop = gr.Button("Stop", elem_id="stop")
                status = gr.Markdown(elem_id="status")
                live = gr.Plot(label="monitor C(t): live", elem_id="trace-plot")
                stream_audio = gr.Audio(
                    label="live stream",
                    elem_id="stream",
                    streaming=True,
                    autoplay=True,
                    interactive=False,
                )
                gr.Markdown(LIVE_NOTE)
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
        gen_inputs += [monitor, threshold, heads, direction, compare, stream_on, lanes_box, *sliders, endless]

        def on_lanes(session: Session, text: str, duration_s: float) -> str:
            return lanes_message(text, [p.trait for p in session.probes], float(duration_s))

        for trigger in (lanes_box.change, duration.change):  # checked as it is typed
            trigger(on_lanes, [session, lanes_box, duration], lanes_note, queue=False)
        gen_outputs = [status, live, stream_audio, audio_ref, audio_out, spec, files]
        handler = GenerateHandler(holder)
        desk = handler.desk

        def on_generate(request: gr.Request, *values: Any) -> Iterator[Any]:
            *inputs, endless_on = values
            yield from handler(*inputs, key=request.session_hash, endless=bool(endless_on))

        users: dict[str, Any] = {"concurrency_id": "generate", "concurrency_limit": MAX_USERS}
        go.click(with_status(on_generate), gen_inputs, gen_outputs, api_name="on_generate", **users)

        # the hand on the controls while it plays: each reaches only this session's run
        def on_stop(request: gr.Request) -> None:
            desk.stop(request.session_hash)

        stop.click(on_stop, None, None, queue=False)

        def moved(slot: int) -> Callable[..., None]:
            def on_alpha(value: float, request: gr.Request) -> None:
                try:
                    desk.strength(request.session_hash, slot, value)
                except (TypeError, ValueError) as err:  # an API client's value: the page's bounds hold
                    gr.Warning(f"strength not changed: {err}")

            return on_alpha

        for i, slider in enumerate(sliders):
            slider.change(moved(i), [slider], None, queue=False)

        def on_monitor(on: bool, request: gr.Request) -> None:
            desk.monitor(request.session_hash, on)

        monitor.change(on_monitor, [monitor], None, queue=False)

        def on_lanes_now(text: str, duration_s: float, endless_on: bool, request: gr.Request) -> str:
            return desk.lanes(request.session_hash, text, None if endless_on else duration_s)

        lanes_now.click(on_lanes_now, [lanes_box, duration, endless], lanes_note, queue=False)
    demo.queue(default_concurrency_limit=1)
    return demo
