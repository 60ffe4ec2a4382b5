"""The trial process: an actor that runs one trial at a time in a training thread.

The driver calls ``run(spec)`` to start a trial and ``poll`` to collect its results; both
return a :class:`~nebula.tune._channel.Batch`. ``stop`` (served concurrently, the actor
has two threads) unwinds the trial. The same actor then takes the next trial when the
sweep reuses actors.
"""

from __future__ import annotations

import inspect
import shutil
import tempfile
import threading
import traceback
from typing import Any

from nebula.tune._channel import Batch, Channel, StopTrial, TrialSpec
from nebula.tune._checkpoint import Checkpoint
from nebula.tune._session import TrialSession, set_session
from nebula.tune._trainable import Trainable

__all__ = ["TrialHost"]

_STOP_TIMEOUT_S = 10.0


class TrialHost:
    def __init__(self, trainable: Any) -> None:
        self._trainable = trainable
        self._is_class = inspect.isclass(trainable)
        self._instance: Any = None
        self._channel: Channel | None = None
        self._thread: threading.Thread | None = None

    def ping(self) -> bool:
        return True

    def run(self, spec: TrialSpec) -> Batch:
        """Start a trial and return its first batch."""
        if self._thread is not None:
            self._finish_previous()
        channel = Channel(spec.window, spec.linger_s)
        self._channel = channel
        session = TrialSession(spec, channel)
        target = self._run_class if self._is_class else self._run_function
        self._thread = threading.Thread(
            target=target, args=(spec, session), name=f"trial-{spec.trial_id}", daemon=True
        )
        self._thread.start()
        return channel.poll(0, False)

    def poll(self, acked: int, save: bool = False) -> Batch:
        assert self._channel is not None
        return self._channel.poll(acked, save)

    def stop(self, save: bool = False) -> tuple[bool, Batch]:
        """Stop the running trial; (whether its thread ended, the records not yet taken)."""
        channel, thread = self._channel, self._thread
        if channel is None or thread is None:
            return True, Batch([], "stopped")
        channel.request_stop(save)
        thread.join(_STOP_TIMEOUT_S)
        return not thread.is_alive(), channel.take_remaining()

    def shutdown(self) -> None:
        """End the running trial and let the last trainable instance clean up."""
        self._finish_previous()
        if self._instance is not None:
            _stop_instance(self._instance)
            self._instance = None

    def _finish_previous(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            if self._channel is not None:
                self._channel.request_stop(False)
            self._thread.join(_STOP_TIMEOUT_S)

    # --- the training thread -----------------------------------------------------------------

    def _run_function(self, spec: TrialSpec, session: TrialSession) -> None:
        channel = session.channel
        set_session(session)
        try:
            returned = self._trainable(dict(spec.config))
            if isinstance(returned, dict):
                session.report(returned, None)
        except StopTrial:
            channel.finish("stopped" if channel.stop_requested else "done")
        except BaseException as exc:
            channel.finish("error", traceback.format_exc(), _picklable(exc))
        else:
            channel.finish("done")
        finally:
            set_session(None)

    def _run_class(self, spec: TrialSpec, session: TrialSession) -> None:
        channel = session.channel
        set_session(session)
        instance = None
        try:
            instance = self._instance_for(spec)
            if spec.restore is not None:
                with spec.restore.as_directory() as directory:
                    _load(instance, directory)
            if isinstance(instance, Trainable):
                instance._iteration = spec.iteration
                instance._time_total = spec.time_total_s
            self._train_loop(instance, spec, session)
        except StopTrial:
            self._save_on_stop(instance, session)
            channel.finish("stopped" if channel.stop_requested else "done")
        except BaseException as exc:
            self._instance = None
            channel.finish("error", traceback.format_exc(), _picklable(exc))
        else:
            channel.finish("done")
        finally:
            set_session(None)

    def _instance_for(self, spec: TrialSpec) -> Any:
        previous, self._instance = self._instance, None
        if previous is not None:
            reset = getattr(previous, "reset_config", None)
            if callable(reset) and reset(dict(spec.config)) is True:
                if isinstance(previous, Trainable):
                    previous.config = dict(spec.config)
                    previous._iterations_since_restore = 0
                self._instance = previous
                return previous
            _stop_instance(previous)
        self._instance = self._trainable(dict(spec.config))
        return self._instance

    def _train_loop(self, instance: Any, spec: TrialSpec, session: TrialSession) -> None:
        channel = session.channel
        while True:
            if channel.stop_requested:
                raise StopTrial
            if channel.take_save_request():
                channel.add_checkpoint(_save(instance, session))
            raw = instance.train()
            if not isinstance(raw, dict):
                raise TypeError(
                    f"{type(instance).__name__}.train() must return a dict, "
                    f"got {type(raw).__name__}."
                )
            result = session.fill(raw)
            done = bool(raw.get("done")) or session.should_stop(result)
            result["done"] = done
            every = spec.checkpoint_frequency
            checkpoint = None
            if (every and session.iteration % every == 0) or (done and spec.checkpoint_at_end):
                checkpoint = _save(instance, session)
            channel.put((result, checkpoint))
            if done:
                return

    def _save_on_stop(self, instance: Any, session: TrialSession) -> None:
        if instance is not None and session.channel.save_on_stop:
            try:
                checkpoint = _save(instance, session)
            except Exception:
                return  # a trainable that cannot save resumes from its last checkpoint
            session.channel.add_checkpoint(checkpoint)


def _save(instance: Any, session: TrialSession) -> Checkpoint:
    directory = tempfile.mkdtemp(prefix="nebula_tune_ckpt_")
    try:
        if isinstance(instance, Trainable):
            instance.save(directory)
        else:
            instance.save_checkpoint(directory)
        return session.persist(Checkpoint.from_directory(directory))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _load(instance: Any, directory: str) -> None:
    if isinstance(instance, Trainable):
        instance.restore(directory)
    else:
        instance.load_checkpoint(directory)


def _stop_instance(instance: Any) -> None:
    stop = getattr(instance, "stop", None)
    if callable(stop):
        try:
            stop()
        except Exception:
            pass


def _picklable(exc: BaseException) -> BaseException | None:
    import cloudpickle

    try:
        cloudpickle.dumps(exc)
    except Exception:
        return None
    return exc
