import subprocess
import sys

import pytest
from pydantic import ValidationError

from profiler.schema import ModelSpec, ProfileOptions


def test_model_spec_needs_exactly_one_source():
    assert ModelSpec(name="bert-base").label() == "bert-base"
    with pytest.raises(ValidationError, match="exactly one"):
        ModelSpec()
    with pytest.raises(ValidationError, match="exactly one"):
        ModelSpec(name="bert-base", path="/tmp")
    with pytest.raises(ValidationError, match="model_type"):
        ModelSpec(config={"hidden_size": 4})


@pytest.mark.parametrize("field,value", [("batch_size", 0), ("seq_len", -1), ("ranks", [0]), ("repeats", 0),
                                         ("bottlenecks", []), ("methods", ["lora", "lora"]), ("device", "tpu")])
def test_options_reject_bad_values_naming_the_field(field, value):
    with pytest.raises(ValidationError) as err:
        ProfileOptions(**{field: value})
    assert field in str(err.value)


def test_schema_and_catalog_import_without_torch():
    code = ("import sys, profiler, profiler.schema; from profiler.models.catalog import list_models; "
            "assert len(list_models()) >= 6; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
