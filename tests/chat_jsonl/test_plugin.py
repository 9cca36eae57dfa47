"""chat-jsonl is registered through its entry point like any plugin, with its data commands."""

from __future__ import annotations

from lexiedge.plugin import build_host


def test_registered_as_a_causal_lm_dataset_with_its_settings() -> None:
    import lexiedge_chat_jsonl.plugin as plugin_module
    from lexiedge_chat_jsonl import ChatJsonlSettings

    host = build_host(entry_points=False)
    host.manager.register(plugin_module)
    host.manager.hook.lexiedge_add_datasets(registry=host.datasets)
    plugin_class = host.datasets.get_class("chat-jsonl")
    assert plugin_class.tasks == frozenset({"causal-lm"}) and plugin_class.Settings is ChatJsonlSettings
    defaults = ChatJsonlSettings()
    assert (defaults.packing, defaults.val_fraction, defaults.test_fraction, defaults.truncate) == (
        True,
        0.1,
        0.0,
        True,
    )


def test_installed_entry_point_provides_the_dataset_and_commands(cli) -> None:
    host = build_host()
    assert "chat-jsonl" in host.datasets
    assert host.distribution_of("datasets", "chat-jsonl").startswith("lexiedge ")
    result = cli("data", "--help")
    assert result.exit_code == 0 and "stats" in result.stdout and "jfleg" in result.stdout
