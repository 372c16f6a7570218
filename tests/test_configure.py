"""Configuration: validation rules, resolved BOM and routing (pure, plus the demo PC)."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlmodel import Session, select

from server.catalog.configure import (
    BomSpec,
    ConfigurationError,
    GroupSpec,
    OperationSpec,
    OptionSpec,
    ProductSpec,
    RuleSpec,
    applies,
    evaluate,
    resolve,
    validate,
)
from server.catalog.products import load_product
from server.models import Product


def _spec() -> ProductSpec:
    def group(
        code: str, name: str, opts: list[str], *, multiple: bool = False, required: bool = True
    ) -> GroupSpec:
        return GroupSpec(
            code, name, multiple, required, tuple(OptionSpec(o, o.upper(), code) for o in opts)
        )

    return ProductSpec(
        id=1,
        code="PC",
        name="PC",
        serial_pattern="PC-{seq:06d}",
        groups=(
            group("cpu", "Processor", ["i5", "i9"]),
            group("disk", "Storage", ["ssd", "hdd"], multiple=True),
            group("case", "Case", ["mt", "sff"]),
            group("gpu", "Graphics", ["gpu"], required=False),
        ),
        rules=(
            RuleSpec("requires", "i9", "mt", "The i9 needs the tower."),
            RuleSpec("excludes", "hdd", "sff"),
        ),
        operations=(
            OperationSpec(2, "FIN", 20, "Final", "final", "Fit disks", required_skill="final"),
            OperationSpec(1, "KIT", 10, "Kit", "kitting", "Take the case"),
            OperationSpec(3, "GPU", 15, "GPU test", "test", when_options=("gpu",)),
        ),
        bom=(
            BomSpec(10, "CASE-MT", "Tower", 1, "KIT", ("mt",)),
            BomSpec(11, "CASE-SFF", "Small", 1, "KIT", ("sff",)),
            BomSpec(12, "SCREW", "Screw", 4, "KIT"),
            BomSpec(12, "SCREW", "Screw", 2, "KIT", ("gpu",)),
            BomSpec(13, "SSD", "SSD", 1, "FIN", ("ssd",)),
            BomSpec(14, "HDD", "HDD", 1, "FIN", ("hdd",)),
            BomSpec(15, "PSU-S", "PSU small", 1, "KIT", ("!gpu",)),
            BomSpec(16, "CARD", "Card", 1, "GPU", ("gpu",)),
        ),
    )


def test_applies_handles_required_and_forbidden_codes() -> None:
    assert applies((), {"a"})
    assert applies(("a", "!b"), {"a"})
    assert not applies(("a", "!b"), {"a", "b"})
    assert not applies(("a",), set())


def test_valid_configuration_resolves_bom_and_routing_in_sequence() -> None:
    config = resolve(_spec(), ["i5", "ssd", "hdd", "mt"])
    assert [r.operation.code for r in config.routing] == ["KIT", "FIN"]
    assert [(p.sku, p.qty, p.operation_code) for p in config.bom] == [
        ("CASE-MT", 1, "KIT"),
        ("SCREW", 4, "KIT"),
        ("PSU-S", 1, "KIT"),
        ("SSD", 1, "FIN"),
        ("HDD", 1, "FIN"),
    ]
    assert config.routing[1].operation.required_skill == "final"
    assert config.options == ("i5", "ssd", "hdd", "mt")


def test_optional_operation_and_merged_quantities() -> None:
    config = resolve(_spec(), ["gpu", "i5", "ssd", "sff"])
    assert [r.operation.code for r in config.routing] == ["KIT", "GPU", "FIN"]
    kit = {p.sku: p.qty for p in config.routing[0].picks}
    assert kit == {"CASE-SFF": 1, "SCREW": 6}  # 4 + 2 screws, no small PSU with a GPU
    assert [p.sku for p in config.routing[1].picks] == ["CARD"]


@pytest.mark.parametrize(
    ("options", "message", "option", "group"),
    [
        (["i5", "ssd"], "Choose a Case (case).", None, "case"),
        (["i5", "i9", "ssd", "mt"], "Only one Processor may be chosen, not i5, i9.", "i9", "cpu"),
        (["i9", "ssd", "sff"], "The i9 needs the tower.", "i9", None),
        (["i5", "hdd", "sff"], "HDD (hdd) cannot be combined with SFF (sff).", "hdd", None),
        (["i5", "ssd", "mt", "wifi"], "Unknown option 'wifi' for product PC.", "wifi", None),
    ],
)
def test_invalid_configuration_names_the_offending_option(
    options: list[str], message: str, option: str | None, group: str | None
) -> None:
    problems = validate(_spec(), options)
    assert [(p.message, p.option, p.group) for p in problems] == [(message, option, group)]
    with pytest.raises(ConfigurationError) as info:
        resolve(_spec(), options)
    assert message in str(info.value)


def test_repeated_and_blank_codes_are_ignored() -> None:
    assert resolve(_spec(), ["i5", " i5", "", "ssd", "mt"]).options == ("i5", "ssd", "mt")


def test_evaluate_marks_excluded_options_for_the_live_form() -> None:
    result = evaluate(_spec(), ["hdd"])
    assert not result.states["sff"].allowed
    assert "cannot be combined" in result.states["sff"].reason
    assert result.states["hdd"].chosen
    assert result.configuration is None
    assert {p.group for p in result.problems} == {"cpu", "case"}
    done = evaluate(_spec(), ["hdd", "i5", "mt"])
    assert done.problems == [] and done.configuration is not None


def test_demo_pc_loads_and_resolves(demo_app: Flask) -> None:
    with Session(demo_app.extensions["taktline.engine"]) as session:
        product = session.exec(select(Product).where(Product.code == "PC")).one()
        spec = load_product(session, product)
    config = resolve(spec, ["i9", "mem64", "ssd2t", "hdd4t", "mt", "gpu4080", "wifi"])
    assert [r.operation.station_kind for r in config.routing] == [
        "kitting",
        "board",
        "final",
        "test",
    ]
    skus = {p.sku for p in config.bom}
    assert {"MB-Z790", "CPU-I9", "COOL-TWR", "PSU-750", "GPU-4080", "HDD-4T", "CBL-SATA"} <= skus
    assert not {"PSU-450", "MB-B760", "COOL-STD"} & skus
    fan = [p for p in config.bom if p.sku == "FAN-120"]
    assert fan[0].qty == 2
    with pytest.raises(ConfigurationError, match="does not fit the small case"):
        resolve(spec, ["i7", "mem32", "ssd1t", "sff", "gpu4080"])
