"""LoRA finetuning: the teacher-forced scoring equals greedy decoding and the restricted
next-byte softmax, the schedule, the adapter's effect, and the peft adapter files."""

import copy

import numpy as np
import pytest
import torch
from peft import PeftModel

from autofm.core.errors import ValidationError
from autofm.finetune.space import FinetuneConfig
from autofm.finetune.tasks import Split, Task
from autofm.finetune.training import LoraRun, evaluate, finetune, lr_factor, make_batch


def greedy(model, prompt: str, n: int) -> str:
    ids = torch.tensor([list(prompt.encode())])
    with torch.no_grad():
        for _ in range(n):
            next_id = model(ids)[0][0, -1].argmax()
            ids = torch.cat([ids, next_id.view(1, 1)], dim=1)
    return bytes(ids[0, -n:].tolist()).decode("latin-1")


def test_exact_match_equals_greedy_decoding(tiny_gpt):
    candidates = [f"question {i}: " for i in range(200)]
    continuations = {p: greedy(tiny_gpt, p, 3) for p in candidates}
    prompts = [p for p in candidates if continuations[p].isascii()][:6]  # one byte per char
    assert len(prompts) == 6
    answers = [continuations[p] for p in prompts]
    wrong = [a[:2] + chr((ord(a[2]) + 1) % 128) for a in answers[3:]]
    split = Split(prompts, answers[:3] + wrong)
    task = Task("t", "qa", split, split, split)
    result = evaluate(tiny_gpt, task, split)
    assert result.score == pytest.approx(0.5)  # the 3 greedy answers hit, the 3 altered miss


def test_class_probabilities_are_the_next_byte_softmax_over_verbalizers(
    tiny_gpt, toy_classification
):
    task = toy_classification
    result = evaluate(tiny_gpt, task, task.val)  # batched, right-padded prompts
    verbalizers = [ord(v) for v in task.verbalizers]
    for i, prompt in enumerate(task.val.prompts):
        with torch.no_grad():
            logits = tiny_gpt(torch.tensor([list(prompt.encode())]))[0][0, -1]
        expected = torch.softmax(logits[verbalizers], dim=0).numpy()
        np.testing.assert_allclose(result.probabilities[i], expected, atol=1e-5)
    assert result.score == pytest.approx(np.mean(result.probabilities.argmax(1) == task.val.labels))


def test_batch_marks_only_answer_bytes_and_cuts_long_prompts():
    split = Split(["abcdefgh", "xy"], ["12\n", "3\n"])
    batch = make_batch(split, [0, 1], block_size=6, device=torch.device("cpu"))
    # example 0: prompt cut to its last 4 bytes "efgh", then "12\n" → input "efgh12"
    assert bytes(batch.inputs[0].tolist()) == b"efgh12"
    assert batch.targets[0].tolist() == [-100, -100, -100, ord("1"), ord("2"), ord("\n")]
    assert batch.targets[1].tolist()[:3] == [-100, ord("3"), ord("\n")]
    assert (batch.targets[1, 3:] == -100).all()


def test_schedules():
    total = 100
    linear = FinetuneConfig(scheduler="linear", warmup_fraction=0.1)
    assert lr_factor(linear, 0, total) < 0.2
    assert lr_factor(linear, 10, total) == pytest.approx(1.0)
    assert lr_factor(linear, 55, total) == pytest.approx(0.5)
    cosine = FinetuneConfig(scheduler="cosine")
    assert lr_factor(cosine, 50, total) == pytest.approx(0.5)
    assert lr_factor(FinetuneConfig(scheduler="constant"), 99, total) == 1.0


def test_lora_starts_as_the_base_model_and_leaves_it_unchanged(tiny_gpt, toy_qa):
    before = copy.deepcopy(tiny_gpt.state_dict())
    run = LoraRun(tiny_gpt, toy_qa, FinetuneConfig(learning_rate=1e-2), max_epochs=2)
    np.testing.assert_allclose(
        evaluate(run.model, toy_qa, toy_qa.val).losses,
        evaluate(tiny_gpt, toy_qa, toy_qa.val).losses,
        rtol=1e-6,
    )
    run.step()
    for name, tensor in tiny_gpt.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    assert not np.allclose(
        evaluate(run.model, toy_qa, toy_qa.val).losses,
        evaluate(tiny_gpt, toy_qa, toy_qa.val).losses,
    )


def test_finetuning_learns_a_memorisable_task(tiny_gpt, toy_qa):
    config = FinetuneConfig(
        learning_rate=1e-2, lora_rank=16, lora_alpha=32, target_modules="attention+mlp",
        batch_size=4, scheduler="constant", lora_dropout=0.0,
    )  # fmt: skip
    result = finetune(tiny_gpt, toy_qa, config, epochs=8)
    losses = [r.train_loss for r in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert result.best_epoch == int(np.argmax(result.curve)) + 1
    assert len(result.seconds) == 8 and all(s > 0 for s in result.seconds)
    with pytest.raises(ValidationError, match="already has all"):
        result.run.step()


def test_adapter_folder_loads_with_peft(tiny_gpt, toy_classification, tmp_path):
    run = LoraRun(tiny_gpt, toy_classification, FinetuneConfig(learning_rate=5e-3), max_epochs=2)
    run.step()
    run.step()
    run.save_adapter(tmp_path / "adapter")
    loaded = PeftModel.from_pretrained(copy.deepcopy(tiny_gpt), str(tmp_path / "adapter"))
    expected = run.test()
    got = evaluate(loaded, toy_classification, toy_classification.test)
    np.testing.assert_allclose(got.probabilities, expected.probabilities, atol=1e-6)


def test_config_outside_the_space_is_refused(tiny_gpt, toy_qa):
    with pytest.raises(ValidationError, match="learning_rate"):
        LoraRun(tiny_gpt, toy_qa, FinetuneConfig(learning_rate=1.0), max_epochs=1)
