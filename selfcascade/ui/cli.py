"""Command line: python -m selfcascade {generate,video,train} ... (exit 2 with one line on stderr for bad arguments;
the arguments themselves: selfcascade.ui.cli_arguments)."""

from __future__ import annotations

import sys
from pathlib import Path

from selfcascade.cascade.request import VideoRequest
from selfcascade.cascade.stages import parse_size
from selfcascade.errors import InvalidRequest
from selfcascade.ui.cli_arguments import EXIT_BAD_INPUT, build_parser


def _request(args, request_class, **extra):
    """The validated request of `generate` or `video` (before any model loads: bad numbers fail fast)."""
    from selfcascade.cascade.fields import request_from_fields
    from selfcascade.cascade.presets import request_defaults

    width, height = parse_size(args.size)
    # The model the request will load: `video` without --model means the embedded video model. For --mode direct
    # the preset's cascade settings are left out: the baseline is plain unless --upper (or --anchor ...) asks.
    settings = request_defaults(args.model if args.model is not None else request_class.default_model, args.mode)
    if issubclass(request_class, VideoRequest):  # images only (cascade.py): say so when asked for
        if args.consensus is not None:
            raise InvalidRequest("--consensus is for images; a video's first stage is handed on as sampled")
        settings.pop("consensus", None)
    for key in ("steps", "strength", "guidance", "upper_guidance", "scheduler", "upper", "anchor", "pivot_up",
                "consensus", "max_side"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    return request_from_fields(request_class, prompt=extra.pop("prompt", args.prompt), width=width, height=height,
                               mode=args.mode, negative_prompt=args.negative, stages=args.stages, seed=args.seed,
                               model=args.model, adapter=args.adapter, dtype=args.dtype, vae=args.vae,
                               vae_tiling=args.vae_tiling, offload=args.offload, loras=args.lora or [],
                               **settings, **extra)


def _follow(events, args, prompt: str, write_result, previews: str | Path | None = None, quiet: bool = False,
            noted: set | None = None) -> None:
    """Shared by `generate` and `video`: progress (none when `quiet`), each stage's preview PNG into `previews`
    (default: --previews), the run's notes (each once when `noted` collects those already printed), then
    `write_result(Finished)`, which writes the file and returns the line that reports it."""
    from selfcascade.cascade.pipeline import Finished, StageDone
    from selfcascade.files.images import save_png
    from selfcascade.ui.progress import StageProgress, progress_mode

    previews = args.previews if previews is None else previews
    noted = set() if noted is None else noted
    progress = StageProgress(progress_mode(args.quiet or quiet))
    for event in events:
        progress(event)
        if isinstance(event, StageDone) and previews:
            save_png(event.preview, Path(previews) / f"stage{event.stage}_{event.size[0]}x{event.size[1]}.png",
                     {"stage": event.stage, "prompt": prompt})
        elif isinstance(event, Finished):
            progress.close()
            for message in event.metadata["messages"]:
                if message not in noted:
                    noted.add(message)
                    print(f"note: {message}", file=sys.stderr)
            print(write_result(event), flush=True)


def _batch_targets(args, jobs) -> list[Path]:
    """The PNG each job writes: --out for a single image, else --out-dir/NNNNN-<prompt>.png. Checked before
    anything is written or loaded."""
    from selfcascade.cascade.batch import job_filename

    batch = args.prompts is not None or args.num_images > 1
    if args.out is not None:
        if batch:
            raise InvalidRequest("--out names one file: a batch (--prompts, --num-images above 1) needs --out-dir")
        if Path(args.out).suffix.lower() != ".png":
            raise InvalidRequest(f"--out {args.out}: the output must be a .png file")
        return [Path(args.out)]
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidRequest(f"--out-dir {args.out_dir} is a file, not a folder")
    return [out_dir / job_filename(job, len(jobs)) for job in jobs]


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _generate(args) -> int:
    """One image, or a batch (--prompts, --num-images) split across the processes of a launch (torchrun,
    accelerate launch): every process loads the model once and makes its share (cascade/batch.py); the main
    one alone prints the start and memory lines and progress. Exit 1 when any process failed."""
    from selfcascade.cascade.batch import batch_jobs, jobs_for_this_process, ranks_that_failed, read_prompts
    from selfcascade.cascade.request import GenerationRequest
    from selfcascade.files.images import load_user_image
    from selfcascade.models.placement import process_state

    prompts = read_prompts(args.prompts) if args.prompts is not None else None
    request = _request(args, GenerationRequest, **({"prompt": prompts[0]} if prompts else {}))
    jobs = batch_jobs(request, prompts, args.num_images)
    targets = _batch_targets(args, jobs)
    pivot_image = load_user_image(args.image) if args.image is not None else None
    state = process_state()  # every check is done: now join the launch's processes (if any)
    start = None  # the main process's first line, once the model has loaded: a batch, or several processes
    if state.is_main_process and (len(jobs) > 1 or state.num_processes > 1):
        start = (f"{_plural(state.num_processes, 'process', 'processes')}, {_plural(len(jobs), 'image')} "
                 f"({_plural(len(prompts) if prompts else 1, 'prompt')} x {args.num_images}) on {state.device.type}")
    failure = None
    try:
        _generate_jobs(args, request, jobs_for_this_process(jobs, state), targets, pivot_image, state, start)
    except Exception as error:  # noqa: BLE001 - reported after every process has finished (below)
        failure = error
    failed = ranks_that_failed(state, failure is not None)  # waits for every process
    # Leave the launch's process group before exiting: a gloo group still alive at interpreter exit can abort
    # the process ("terminate called without an active exception", seen once under torchrun on 2 CPU ranks).
    state.destroy_process_group()
    if failure is not None:
        raise failure
    if failed:
        print(f"selfcascade: error: {len(failed)} of {state.num_processes} processes failed (rank "
              f"{', '.join(map(str, failed))}; its own error line says why)", file=sys.stderr)
        return 1
    return 0


def _generate_jobs(args, request, jobs, targets: list[Path], pivot_image, state, start: str | None) -> None:
    """This process's jobs: the model loaded once, then one PNG per job. The main process prints `start` (when
    given) and the memory plan once the model has loaded: a model that cannot load is its only line."""
    from selfcascade.cascade.estimate import memory_plan
    from selfcascade.cascade.pipeline import generate
    from selfcascade.files.images import save_png
    from selfcascade.models.loader import load_model
    from selfcascade.models.lora import apply_loras, parse_loras
    from selfcascade.models.video import check_video_model

    if not jobs:  # more processes than images
        return
    for target in {targets[job.index].parent for job in jobs}:
        target.mkdir(parents=True, exist_ok=True)  # fail before sampling, not after
    model = load_model(request.model, request.dtype, request.vae, request.offload, config=args.config)
    check_video_model(model, wanted_video=False)  # before the memory line: a video model is a one-line error
    apply_loras(model, parse_loras(request.loras))  # so is a LoRA that does not fit
    if start:
        print(start, file=sys.stderr, flush=True)
    if state.is_main_process:
        print(f"memory: {memory_plan(model, request).describe()}", file=sys.stderr, flush=True)
    batch = len(targets) > 1 or args.out is None
    noted: set[str] = set()
    for job in jobs:
        out = targets[job.index]

        def write(result, out=out) -> str:
            save_png(result.image, out, result.metadata)
            return f"wrote {out} ({result.image.width}x{result.image.height}, {result.seconds:.1f} s)"

        previews = Path(args.previews) / out.stem if args.previews and batch else args.previews
        events = generate(job.request, model, previews=previews is not None, pivot_image=pivot_image)
        _follow(events, args, job.request.prompt, write, previews, quiet=not state.is_main_process, noted=noted)


def _video(args) -> int:
    from selfcascade.cascade.video import generate_video
    from selfcascade.files.video import check_video_path, write_video

    fps = int(args.fps) if float(args.fps).is_integer() else args.fps
    request = _request(args, VideoRequest, frames=args.frames, fps=fps, free_init=args.free_init,
                       motion=args.motion, travel=args.travel, steer=args.steer)
    out = check_video_path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)  # fail before sampling, not after

    def write(result) -> str:
        write_video(result.frames, out, request.fps, result.metadata)
        width, height = result.frames[0].size
        return f"wrote {out} ({len(result.frames)} frames, {width}x{height}, {result.seconds:.1f} s)"

    _follow(generate_video(request, previews=args.previews is not None), args, request.prompt, write)
    return 0


def _train(args) -> int:
    """Algorithm 1. Under torchrun / accelerate launch every process runs this; only the main one prints
    progress and the result (the adapter is written by it alone, in selfcascade.training.loop)."""
    from selfcascade.models.placement import process_state
    from selfcascade.training.data.clips import training_inputs
    from selfcascade.training.loop import TrainingDone, TrainingRequest, TrainingStarted, TrainingStep, train
    from selfcascade.ui.progress import TrainProgress, progress_mode

    request = TrainingRequest(images=training_inputs(args.images), size=parse_size(args.size), steps=args.steps,
                              learning_rate=args.lr, batch=args.batch, caption=args.caption,
                              strength=args.strength, model=args.model, out=args.out, resume=args.resume,
                              seed=args.seed, mixed_precision=args.mixed_precision, grad_accum=args.grad_accum,
                              frames=args.frames, objective=args.objective, design=args.design,
                              width=args.width)
    request.check()
    if args.log_every < 1:
        raise InvalidRequest(f"--log-every must be 1 or more, not {args.log_every}")
    progress, main = TrainProgress("quiet"), True
    try:
        for event in train(request):
            if isinstance(event, TrainingStarted):
                main = event.main_process
                progress = TrainProgress(progress_mode(args.quiet or not main), args.log_every)
                if main:
                    print(event.describe(), file=sys.stderr, flush=True)
            elif isinstance(event, TrainingStep):
                progress.step(event)
            elif isinstance(event, TrainingDone) and main:
                progress.close()
                print(f"wrote {event.path} ({event.steps} steps, {event.seconds:.0f} s)")
    finally:
        progress.close()
    process_state().destroy_process_group()  # as _generate: leave a launch's group before exiting
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()  # its import-time notes (e.g. no torchvision) are not ours
    transformers_logging.disable_progress_bar()
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()  # loading bars would bury the one-line messages on stderr
    diffusers_logging.set_verbosity_error()  # e.g. deprecation notes of TextToVideoSDPipeline
    try:
        if args.command == "generate":
            return _generate(args)
        if args.command == "video":
            return _video(args)
        if args.command == "train":
            return _train(args)
    except InvalidRequest as error:
        print(f"selfcascade: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:  # e.g. the output folder cannot be written
        print(f"selfcascade: error: {error.strerror or error}: {error.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return EXIT_BAD_INPUT
    except (RuntimeError, MemoryError) as error:  # out of memory outside the cascade's own handling
        from selfcascade.models.memory import is_out_of_memory, out_of_memory_message, release_memory

        if not is_out_of_memory(error):
            raise
        release_memory()
        print(f"selfcascade: error: {out_of_memory_message('during this run')}", file=sys.stderr)
    return 1
