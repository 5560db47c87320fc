import pytest

from loopviz.config import ConfigError, RunConfig


def test_defaults_are_valid_and_round_trip_through_json():
    config = RunConfig().validate()
    assert RunConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize("changes, field", [
    ({"epochs": 0}, "epochs"), ({"lr": 0.0}, "lr"), ({"lr": -1e-3}, "lr"), ({"d": 0}, "d"),
    ({"loops": 0}, "loops"), ({"model": "triple"}, "model"), ({"batch_size": 501}, "batch_size"),
    ({"lr": float("nan")}, "lr"), ({"embedding": "onehot", "d": 4}, "onehot"),
    ({"model": "shift", "epochs": 50, "shift_epoch": 60}, "shift_epoch"),
])
def test_bad_values_name_the_field(changes, field):
    with pytest.raises(ConfigError, match=field):
        RunConfig(**changes).validate()


def test_from_dict_rejects_unknown_fields_and_wrong_types():
    with pytest.raises(ConfigError, match="unknown config field"):
        RunConfig.from_dict({"depth": 3})
    with pytest.raises(ConfigError, match="d must be int"):
        RunConfig.from_dict({"d": "eight"})
    with pytest.raises(ConfigError, match="keep_all_sequences"):
        RunConfig.from_dict({"keep_all_sequences": "maybe"})
    with pytest.raises(ConfigError, match="not valid JSON"):
        RunConfig.from_json("{nope")
    assert RunConfig.from_dict({"d": "4", "lr": "0.01", "keep_all_sequences": "false"}) == \
        RunConfig(d=4, lr=0.01, keep_all_sequences=False)


def test_key_ignores_what_does_not_change_the_numbers():
    base = RunConfig(model="looped")
    assert base.key() == base.replace(device="cpu").key()
    assert base.key() == base.replace(shift_epoch=5).key()
    assert base.key() != base.replace(lr=2e-3).key()
    single = RunConfig(model="single")
    assert single.key() == single.replace(loops=7).key()
    shift = RunConfig(model="shift", shift_epoch=100)
    assert shift.key() != shift.replace(shift_epoch=120).key()


def test_loops_schedule():
    shift = RunConfig(model="shift", shift_epoch=10, loops=3)
    assert [shift.loops_at(e) for e in (0, 10, 11, 600)] == [1, 1, 3, 3]
    assert RunConfig(model="single", loops=3).loops_at(50) == 1
    assert RunConfig(model="looped", loops=4).loops_at(0) == 4


def test_fields_added_later_load_from_old_files_and_keep_old_keys():
    old = RunConfig(epochs=600).to_dict()
    for name in ("entropy_definition", "scp_wait", "optimizer", "momentum"):
        old.pop(name)
    loaded = RunConfig.from_dict(old)      # a config.json written before the fields existed
    assert loaded.entropy_definition == "histogram" and loaded.scp_wait == "patience"
    # The identity hashes exactly the fields such a file had, so its stored run is still found.
    import hashlib
    import json
    science = {k: v for k, v in old.items() if k != "device"}
    science.pop("shift_epoch"), science.pop("reset_optimizer")
    assert loaded.key() == hashlib.sha256(json.dumps(science, sort_keys=True).encode()).hexdigest()[:16]
    assert loaded.replace(scp_wait="gradient").key() == loaded.key()          # analysis only
    assert loaded.replace(entropy_definition="spectral").key() != loaded.key()  # changes the records
    with pytest.raises(ConfigError, match="entropy_definition"):
        loaded.replace(entropy_definition="kde")
