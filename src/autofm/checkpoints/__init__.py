"""The checkpoints shipped with autofm (`NAME.json` + `NAME.safetensors` pairs and the
`finetune-tuner/` folder) and `registry`, the sha256 of each of their files."""
