"""Shows or changes the config.json embedded in a CLIP TorchScript archive, leaving its weights and
vocabulary as they are (include/clipxai/model.h lists the keys clipxai reads).

    /usr/bin/python3 scripts/model_config.py models/clipxai-emoji-vit.pt
    /usr/bin/python3 scripts/model_config.py ViT-B-32.pt --set relevance_start_layer=6 --out vit-b32-l6.pt

--set KEY=VALUE takes VALUE as JSON (a bare word is a string); --unset KEY removes a key. Without
--out the archive is rewritten in place (atomically).
"""

import argparse
import json
import os
import sys

import torch

import clip_model


def parse_assignment(text: str):
    key, separator, value = text.partition("=")
    if not separator or not key:
        sys.exit(f"--set {text!r}: expected KEY=VALUE")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("archive")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--unset", action="append", default=[], metavar="KEY")
    parser.add_argument("--out", help="write the changed archive here instead of over ARCHIVE")
    args = parser.parse_args()

    extra_files = {"config.json": "", clip_model.VOCAB_FILE_NAME: ""}
    module = torch.jit.load(args.archive, map_location="cpu", _extra_files=extra_files)
    config = json.loads(extra_files["config.json"]) if extra_files["config.json"] else {}
    if not args.set and not args.unset:
        print(json.dumps(config, indent=1))
        return
    for assignment in args.set:
        key, value = parse_assignment(assignment)
        config[key] = value
    for key in args.unset:
        config.pop(key, None)
    kept = {name: data for name, data in extra_files.items() if data and name != "config.json"}
    out = args.out or args.archive
    torch.jit.save(module, out + ".tmp", _extra_files=dict(kept, **{"config.json": json.dumps(config)}))
    os.replace(out + ".tmp", out)
    print(f"{out}: config.json = {json.dumps(config)}")


if __name__ == "__main__":
    main()
