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
