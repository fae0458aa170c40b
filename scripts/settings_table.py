"""Print the configuration table of the README from the Settings model (python scripts/settings_table.py)."""

from service.config import Settings


def main() -> None:
    print("| variable | default | meaning |")
    print("|---|---|---|")
    for name, field in Settings.model_fields.items():
        default = field.default if field.default_factory is None else field.default_factory()
        shown = "" if default in ("", None, []) else f"`{default}`"
        print(f"| `OBLIVIO_{name.upper()}` | {shown} | {field.description} |")


if __name__ == "__main__":
    main()
