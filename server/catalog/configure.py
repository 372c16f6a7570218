"""Configuration: validate a product's chosen options, resolve the unit's BOM and routing.

The functions here are pure: they work on the plain dataclasses below (``ProductSpec``),
never on a database session or a Flask request (an import-linter contract holds them
to it). ``server.catalog.products.load_product`` is the adapter that reads a
``ProductSpec`` from the models; everything here can be tested with literals.

Rules (see docs/orders.md):
- every chosen code must be an option of the product;
- a required group needs at least one option, a single-choice group at most one;
- ``requires``: choosing ``option`` needs ``other`` chosen too;
  ``excludes``: ``option`` and ``other`` cannot both be chosen;
- BOM lines and operations apply when all their ``when_options`` are chosen
  (``"!code"``: that code must not be chosen).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OptionSpec:
    code: str
    name: str
    group: str


@dataclass(frozen=True)
class GroupSpec:
    code: str
    name: str
    multiple: bool
    required: bool
    options: tuple[OptionSpec, ...]


@dataclass(frozen=True)
class RuleSpec:
    kind: str  # requires | excludes
    option: str
    other: str
    message: str = ""


@dataclass(frozen=True)
class OperationSpec:
    id: int
    code: str
    sequence: int
    name: str
    station_kind: str
    instructions: str = ""
    image: str = ""
    standard_seconds: int = 300
    required_skill: str | None = None
    when_options: tuple[str, ...] = ()


@dataclass(frozen=True)
class BomSpec:
    part_id: int
    sku: str
    description: str
    quantity: int
    operation_code: str
    when_options: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProductSpec:
    id: int
    code: str
    name: str
    serial_pattern: str
    groups: tuple[GroupSpec, ...]
    rules: tuple[RuleSpec, ...] = ()
    operations: tuple[OperationSpec, ...] = ()
    bom: tuple[BomSpec, ...] = ()

    def option(self, code: str) -> OptionSpec | None:
        for group in self.groups:
            for opt in group.options:
                if opt.code == code:
                    return opt
        return None


@dataclass(frozen=True)
class Problem:
    """One reason a configuration is refused; ``option`` / ``group`` name the culprit."""

    message: str
    option: str | None = None
    group: str | None = None

    def __str__(self) -> str:
        return self.message


class ConfigurationError(ValueError):
    def __init__(self, product: str, problems: list[Problem]) -> None:
        super().__init__(f"{product}: " + " ".join(p.message for p in problems))
        self.product = product
        self.problems = problems


@dataclass(frozen=True)
class Pick:
    part_id: int
    sku: str
    description: str
    qty: int
    operation_code: str

    def as_dict(self) -> dict[str, object]:
        return {"part_id": self.part_id, "sku": self.sku, "qty": self.qty}


@dataclass(frozen=True)
class RoutedOperation:
    operation: OperationSpec
    picks: tuple[Pick, ...]


@dataclass(frozen=True)
class Configuration:
    """A valid configuration: chosen options, the unit's BOM and its routing."""

    product: ProductSpec
    options: tuple[str, ...]
    bom: tuple[Pick, ...]
    routing: tuple[RoutedOperation, ...]


@dataclass(frozen=True)
class OptionState:
    """What the order form shows for one option, given the current choices."""

    option: OptionSpec
    chosen: bool
    allowed: bool
    reason: str = ""


@dataclass
class Evaluation:
    """Everything the live order form needs after each change."""

    states: dict[str, OptionState] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    configuration: Configuration | None = None


def applies(when_options: tuple[str, ...] | list[str], chosen: set[str]) -> bool:
    """Whether a BOM line or operation applies to ``chosen`` option codes."""
    for code in when_options:
        if code.startswith("!"):
            if code[1:] in chosen:
                return False
        elif code not in chosen:
            return False
    return True


def _label(spec: ProductSpec, code: str) -> str:
    opt = spec.option(code)
    return f"{opt.name} ({code})" if opt else code


def _rule_message(spec: ProductSpec, rule: RuleSpec) -> str:
    if rule.message:
        return rule.message
    verb = "requires" if rule.kind == "requires" else "cannot be combined with"
    return f"{_label(spec, rule.option)} {verb} {_label(spec, rule.other)}."


def normalise(options: list[str] | tuple[str, ...]) -> list[str]:
    """Strip blanks and repeats, keep the order given."""
    seen: list[str] = []
    for raw in options:
        code = raw.strip()
        if code and code not in seen:
            seen.append(code)
    return seen


def validate(spec: ProductSpec, options: list[str] | tuple[str, ...]) -> list[Problem]:
    """Every reason ``options`` is not a valid configuration of ``spec`` (empty: valid)."""
    chosen = normalise(options)
    chosen_set = set(chosen)
    problems: list[Problem] = []
    for code in chosen:
        if spec.option(code) is None:
            problems.append(
                Problem(f"Unknown option {code!r} for product {spec.code}.", option=code)
            )
    for group in spec.groups:
        picked = [o.code for o in group.options if o.code in chosen_set]
        if group.required and not picked:
            problems.append(Problem(f"Choose a {group.name} ({group.code}).", group=group.code))
        if not group.multiple and len(picked) > 1:
            problems.append(
                Problem(
                    f"Only one {group.name} may be chosen, not {', '.join(picked)}.",
                    option=picked[1],
                    group=group.code,
                )
            )
    for rule in spec.rules:
        if rule.option not in chosen_set:
            continue
        broken = (
            (rule.other not in chosen_set)
            if rule.kind == "requires"
            else (rule.other in chosen_set)
        )
        if broken:
            problems.append(Problem(_rule_message(spec, rule), option=rule.option))
    return problems


def resolve(spec: ProductSpec, options: list[str] | tuple[str, ...]) -> Configuration:
    """The unit's BOM and routing for ``options``; raises ``ConfigurationError``."""
    problems = validate(spec, options)
    if problems:
        raise ConfigurationError(spec.code, problems)
    chosen = set(normalise(options))
    ordered = tuple(o.code for g in spec.groups for o in g.options if o.code in chosen)
    routing_ops = sorted(
        (op for op in spec.operations if applies(op.when_options, chosen)),
        key=lambda op: (op.sequence, op.code),
    )
    op_codes = {op.code for op in routing_ops}
    # The same part picked at the same operation twice (two rules that both apply)
    # is one pick with the quantities added.
    merged: dict[tuple[str, int], Pick] = {}
    for line in spec.bom:
        if not applies(line.when_options, chosen):
            continue
        if line.operation_code not in op_codes:
            problems.append(
                Problem(
                    f"{line.sku} is picked at operation {line.operation_code}, which does not "
                    f"apply to this configuration; fix the catalog.",
                    group=None,
                )
            )
            continue
        key = (line.operation_code, line.part_id)
        prev = merged.get(key)
        merged[key] = Pick(
            line.part_id,
            line.sku,
            line.description,
            line.quantity + (prev.qty if prev else 0),
            line.operation_code,
        )
    if problems:
        raise ConfigurationError(spec.code, problems)
    routing = tuple(
        RoutedOperation(op, tuple(p for (code, _), p in merged.items() if code == op.code))
        for op in routing_ops
    )
    bom = tuple(p for r in routing for p in r.picks)
    return Configuration(product=spec, options=ordered, bom=bom, routing=routing)


def evaluate(spec: ProductSpec, options: list[str] | tuple[str, ...]) -> Evaluation:
    """For the live form: which options may still be chosen, the problems, and the
    resolved configuration once valid."""
    chosen = normalise(options)
    chosen_set = set(chosen)
    result = Evaluation(problems=validate(spec, chosen))
    for group in spec.groups:
        for opt in group.options:
            reason = ""
            if opt.code not in chosen_set:
                for rule in spec.rules:
                    conflict = rule.kind == "excludes" and (
                        (rule.option == opt.code and rule.other in chosen_set)
                        or (rule.other == opt.code and rule.option in chosen_set)
                    )
                    if conflict:
                        reason = _rule_message(spec, rule)
                        break
            result.states[opt.code] = OptionState(opt, opt.code in chosen_set, not reason, reason)
    if not result.problems:
        try:
            result.configuration = resolve(spec, chosen)
        except ConfigurationError as exc:
            result.problems = exc.problems
    return result
