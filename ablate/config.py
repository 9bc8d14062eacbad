"""Where the config tree lives and how ablate composes it.

`conf/` (one run), `sweeps/` (sets of runs) and `analysis/` (tables) sit at the project root.
The root is found from ``ABLATE_PROJECT``, else by walking up from the working directory,
else next to the installed package (editable installs), so ``ablate`` works from any
sub-directory of a checkout.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from omegaconf import DictConfig, OmegaConf

from ablate.errors import ConfigError

PRIMARY = "train"  # conf/train.yaml


def project_root() -> Path:
    """The directory that holds ``conf/train.yaml``."""
    env = os.environ.get("ABLATE_PROJECT")
    if env:
        root = Path(env).resolve()
        if not (root / "conf" / f"{PRIMARY}.yaml").is_file():
            raise ConfigError(f"ABLATE_PROJECT={env!r} has no conf/{PRIMARY}.yaml")
        return root
    here = Path.cwd().resolve()
    for cand in (here, *here.parents):
        if (cand / "conf" / f"{PRIMARY}.yaml").is_file():
            return cand
    pkg_parent = Path(__file__).resolve().parent.parent
    if (pkg_parent / "conf" / f"{PRIMARY}.yaml").is_file():
        return pkg_parent
    raise ConfigError(
        f"no ablate project found: no conf/{PRIMARY}.yaml above {here}; "
        "run from a checkout or set ABLATE_PROJECT"
    )


def config_dir() -> Path:
    return project_root() / "conf"


def compose(overrides: Iterable[str] = ()) -> DictConfig:
    """Compose ``conf/train.yaml`` with Hydra overrides, exactly as ``ablate train`` would.

    Unknown groups, options or keys raise a one-line ``ValueError`` naming the bad value
    and, for a group option, the options that exist.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    overrides = list(overrides)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        try:
            return hydra_compose(config_name=PRIMARY, overrides=overrides)
        except MissingConfigException as exc:
            raise ConfigError(_first_line(exc)) from None
        except (HydraException, OmegaConfBaseException) as exc:
            raise ConfigError(f"bad override in {overrides}: {_first_line(exc)}") from None


def group_options(group: str) -> list[str]:
    """The options of a config group, e.g. ``group_options("attention")``."""
    gdir = config_dir() / group
    return sorted(p.stem for p in gdir.glob("*.yaml"))


def _first_line(exc: BaseException) -> str:
    """Hydra's multi-line errors folded into one line (the options list kept, search path dropped)."""
    raw = [ln for ln in str(exc).splitlines() if ln.strip()]
    if not raw:
        return type(exc).__name__
    head, options = raw[0].strip(), []
    for i, ln in enumerate(raw[1:], 1):
        if ln.lower().startswith("available options"):
            for opt in raw[i + 1:]:
                if not opt.startswith(("\t", " ")):
                    break
                options.append(opt.strip())
            break
    if options:
        return f"{head}; allowed: {', '.join(options)}"
    return " ".join(ln.strip() for ln in raw if not ln.startswith(("\t", "Config search path")))


def to_container(cfg: DictConfig) -> dict:
    """Resolved plain-dict view of a run config (no ``hydra`` node)."""
    data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    data.pop("hydra", None)
    return data


def spec_path(name: str, directory: Path, what: str) -> Path:
    """``<directory>/<name>.yaml`` (or ``name`` itself if it is a YAML path); unknown names are
    a one-line error listing the files that exist."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else directory / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.yaml"))) or f"(none in {directory.name}/)"
        raise ConfigError(f"unknown {what} {name!r}; allowed: {known}")
    return path


def load_yaml(path: Path, what: str) -> DictConfig:
    """A YAML file holding a mapping, as a DictConfig; a syntax error is one line naming the file,
    the problem and where it is (``line 2, column 6``), not a parser traceback."""
    import yaml

    try:
        raw = OmegaConf.load(path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{what} {path.stem!r}: {path} is not valid YAML ({problem}{where}); "
                          "allowed: a YAML mapping of keys to values") from None
    if not isinstance(raw, DictConfig):
        raise ConfigError(f"{what} {path.stem!r}: {path} holds a {type(raw).__name__}; "
                          "allowed: a YAML mapping of keys to values")
    return raw


def check_spec_name(what: str, name: object) -> str:
    """A sweep or table name becomes a file or directory name under the output dir: refuse one
    that is empty or could leave it (``/``, ``\\``, ``..``)."""
    bad = not isinstance(name, str) or not name.strip() or name in (".",) or any(
        s in name for s in ("/", "\\", "..", "\0"))
    if bad:
        raise ConfigError(f"{what} name {name!r} is not allowed; allowed: a non-empty name without '/', "
                          "'\\' or '..' (it names files under the output dir)")
    return name


def load_structured(path: Path, cls: type, what: str):
    """Load a YAML file into dataclass ``cls`` (OmegaConf-validated: unknown keys and wrong
    types are one-line errors); ``name`` defaults to the file's stem and must be a safe file name."""
    from omegaconf.errors import OmegaConfBaseException

    raw = load_yaml(path, what)
    raw.setdefault("name", path.stem)
    try:
        data = OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(cls), raw), resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{what} {path.stem!r}: {str(exc).splitlines()[0]}") from None
    check_spec_name(what, data.get("name"))
    return cls(**data)
