"""The simulated things of the demo board (contract: /work/notes/tools.md)."""

from __future__ import annotations

from iot.thing import BoolParam, Handler, IntParam, Method, Prop, Result, StrParam, Thing, Value

LAMP_COLORS = (
    "white", "warm white", "red", "orange", "yellow", "green", "blue", "purple", "pink",
)  # fmt: skip
THEMES = ("light", "dark")
THERMOSTAT_MODES = ("heat", "cool", "auto", "off")
LAMP_NAMES = ("living_room_lamp", "kitchen_lamp", "bedroom_lamp")


def set_from_arg(prop: str, arg: str | None = None) -> Handler:
    """A handler storing argument ``arg`` (default: same name) into property ``prop``."""

    def handler(thing: Thing, args: dict[str, Value]) -> Result:
        thing.set(prop, args[arg or prop])
        return True

    return handler


def set_const(prop: str, value: Value) -> Handler:
    def handler(thing: Thing, args: dict[str, Value]) -> Result:
        thing.set(prop, value)
        return True

    return handler


def audio_speaker() -> Thing:
    return Thing(
        "audio_speaker",
        "The audio speaker of the device",
        (Prop("volume", "Current volume, 0-100", int), Prop("muted", "Whether muted", bool)),
        {"volume": 70, "muted": False},
        (
            Method(
                "set_volume",
                "Set the volume of the audio speaker. If the current volume is unknown, you "
                "must call `self.get_device_status` tool first and then call this tool.",
                (IntParam("volume", "Volume", 0, 100),),
                set_from_arg("volume"),
            ),
            Method(
                "set_mute",
                "Mute or unmute the audio speaker.",
                (BoolParam("muted", "True to mute"),),
                set_from_arg("muted"),
            ),
        ),
    )


def screen() -> Thing:
    return Thing(
        "screen",
        "The screen of the device",
        (Prop("brightness", "Backlight brightness, 0-100", int), Prop("theme", "Theme", str)),
        {"brightness": 80, "theme": "light"},
        (
            Method(
                "set_brightness",
                "Set the brightness of the screen.",
                (IntParam("brightness", "Brightness", 0, 100),),
                set_from_arg("brightness"),
            ),
            Method(
                "set_theme",
                "Set the theme of the screen. The theme can be `light` or `dark`.",
                (StrParam("theme", "Theme", choices=THEMES),),
                set_from_arg("theme"),
            ),
        ),
    )


def lamp(name: str) -> Thing:
    room = name.removesuffix("_lamp").replace("_", " ")
    return Thing(
        name,
        f"The {room} lamp",
        (
            Prop("power", "Whether the lamp is on", bool),
            Prop("brightness", "Brightness, 0-100", int),
            Prop("color", "Light color", str),
        ),
        {"power": False, "brightness": 100, "color": "white"},
        (
            Method("turn_on", f"Turn on the {room} lamp.", (), set_const("power", True)),
            Method("turn_off", f"Turn off the {room} lamp.", (), set_const("power", False)),
            Method(
                "set_brightness",
                f"Set the brightness of the {room} lamp (percent).",
                (IntParam("brightness", "Brightness", 0, 100),),
                set_from_arg("brightness"),
            ),
            Method(
                "set_color",
                f"Set the color of the {room} lamp: {', '.join(LAMP_COLORS)}.",
                (StrParam("color", "Color", choices=LAMP_COLORS),),
                set_from_arg("color"),
            ),
        ),
    )


def thermostat() -> Thing:
    return Thing(
        "thermostat",
        "The room thermostat",
        (
            Prop("target_temperature", "Target temperature in °C", int),
            Prop("mode", "Mode: heat, cool, auto or off", str),
        ),
        {"target_temperature": 20, "mode": "auto"},
        (
            Method(
                "set_temperature",
                "Set the target room temperature in degrees Celsius.",
                (IntParam("temperature", "Temperature in °C", 10, 30),),
                set_from_arg("target_temperature", "temperature"),
            ),
            Method(
                "set_mode",
                "Set the thermostat mode: heat, cool, auto or off.",
                (StrParam("mode", "Mode", choices=THERMOSTAT_MODES),),
                set_from_arg("mode"),
            ),
        ),
    )


def curtain() -> Thing:
    return Thing(
        "curtain",
        "The window curtain",
        (Prop("position", "How far open, percent (0 closed, 100 open)", int),),
        {"position": 0},
        (
            Method("open", "Open the curtain fully.", (), set_const("position", 100)),
            Method("close", "Close the curtain fully.", (), set_const("position", 0)),
            Method(
                "set_position",
                "Open the curtain to a position in percent (0 closed, 100 fully open).",
                (IntParam("position", "Percent open", 0, 100),),
                set_from_arg("position"),
            ),
        ),
    )


def demo_things() -> list[Thing]:
    """Fresh instances, in tools/list order."""
    return [audio_speaker(), screen(), *(lamp(n) for n in LAMP_NAMES), thermostat(), curtain()]
