"""Measures a model with `clipxai eval` on grounding manifests and writes the numbers into its
model card, under "metrics" -> "cpp_clipxai_eval": per family the default setting's pointing game
(peak in the mask, in the box), energy, mIoU, named-concept-first-vs-absent and the share of
images whose every object has its peak in its box; the same by object size (longest box side /
image side), where the model's limits show, and by concept for families of at most
BY_CONCEPT_LIMIT concepts (such as the README demo's three).

    /usr/bin/python3 scripts/make_manifest.py held_out /tmp/grounding/held_out.json --count 500
    /usr/bin/python3 scripts/make_manifest.py independent /tmp/grounding/independent.json --count 500
    /usr/bin/python3 scripts/card_metrics.py --clipxai build/clipxai \\
        --model models/clipxai-emoji-vit.pt --card models/clipxai-emoji-vit.json \\
        held_out_2_to_4_objects=/tmp/grounding/held_out.json \\
        independent_layouts_backgrounds=/tmp/grounding/independent.json
"""

import argparse
import json
import os
import subprocess
import tempfile

from PIL import Image

SIZE_BINS = [(0.0, 0.2, "<0.2"), (0.2, 0.3, "0.2-0.3"), (0.3, 0.4, "0.3-0.4"), (0.4, 0.5, "0.4-0.5"),
             (0.5, float("inf"), "0.5+")]
BY_CONCEPT_LIMIT = 8


def run_eval(clipxai: str, model: str, manifest: str, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "eval.json")
        subprocess.run([clipxai, "eval", "--quiet", "--threads", str(threads), "--model", model, "--json", report,
                        manifest], check=True, stdout=subprocess.DEVNULL)
        with open(report) as f:
            return json.load(f)


def object_sizes(manifest_path: str) -> dict:
    """(image path as clipxai eval reports it, prompt) -> longest box side / longest image side."""
    with open(manifest_path) as f:
        manifest = json.load(f)
    root = os.path.dirname(manifest_path)
    sizes = {}
    for entry in manifest["images"]:
        path = os.path.normpath(os.path.join(root, entry["image"]))
        with Image.open(path) as image:
            side = max(image.size)
        for obj in entry["objects"]:
            x0, y0, x1, y1 = obj["box"]
            sizes[(path, obj["text"])] = max(x1 - x0, y1 - y0) / side
    return sizes


def share(rows: list, key: str) -> float:
    return round(sum(bool(r[key]) for r in rows) / len(rows), 3)


def breakdown(rows: list) -> dict:
    return {"objects": len(rows), "pointing_box": share(rows, "pointing_box"),
            "top1_vs_absent": share(rows, "top1_vs_absent")}


def summary(report: dict, sizes: dict) -> dict:
    setting = report["settings"][0]  # the default method: eval without --start-layer
    rows = setting["per_object"]
    by_image = {}
    for r in rows:
        by_image.setdefault(r["image"], []).append(bool(r["pointing_box"]))
    result = {"setting": setting["label"], "pointing_mask": share(rows, "pointing"),
              "pointing_box": share(rows, "pointing_box"), "energy": round(setting["energy"], 3),
              "miou": round(setting["miou"], 3), "top1_vs_absent": share(rows, "top1_vs_absent"),
              "images_all_pointing_box": round(sum(all(hits) for hits in by_image.values()) / len(by_image), 3),
              "objects": len(rows), "images": report["images"], "by_object_size": {}}
    for low, high, label in SIZE_BINS:
        selected = [r for r in rows if low <= sizes[(os.path.normpath(r["image"]), r["text"])] < high]
        if selected:
            result["by_object_size"][label] = breakdown(selected)
    concepts = sorted({r["text"] for r in rows})
    if len(concepts) <= BY_CONCEPT_LIMIT:
        result["by_concept"] = {c: breakdown([r for r in rows if r["text"] == c]) for c in concepts}
    return result


def update_card_metrics(card_path: str, metrics: dict):
    """Merges `metrics` into the model card's "metrics", keeping its other entries."""
    with open(card_path) as f:
        card = json.load(f)
    card.setdefault("metrics", {}).update(metrics)
    with open(card_path, "w") as f:
        json.dump(card, f, indent=1, ensure_ascii=False)
        f.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clipxai", required=True, help="the clipxai binary")
    parser.add_argument("--model", required=True)
    parser.add_argument("--card", required=True, help="model card JSON to update")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("families", nargs="+", metavar="NAME=MANIFEST")
    args = parser.parse_args()
    metrics = {"command": "clipxai eval --model MODEL MANIFEST (default method); scripts/card_metrics.py"}
    for family in args.families:
        name, manifest = family.split("=", 1)
        metrics[name] = summary(run_eval(args.clipxai, args.model, manifest, args.threads), object_sizes(manifest))
        print(name, json.dumps({k: v for k, v in metrics[name].items() if not k.startswith("by_")}), flush=True)
        for label, row in metrics[name]["by_object_size"].items():
            print(f"  size {label}: {json.dumps(row)}", flush=True)
        for label, row in metrics[name].get("by_concept", {}).items():
            print(f"  concept {label}: {json.dumps(row)}", flush=True)
    update_card_metrics(args.card, {"cpp_clipxai_eval": metrics})


if __name__ == "__main__":
    main()
