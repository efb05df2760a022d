#!/usr/bin/python3
"""The app's top-level X window, as a window manager sees it, for the installed-app tests.

    window.py state TITLE   prints "viewable", "hidden" (exists, not mapped) or "none"
    window.py count TITLE   prints how many top-level windows have that title
    window.py close TITLE   asks the window to close as a window manager's close button does
                            (WM_DELETE_WINDOW), so the app hears CloseRequested, not a kill

Only top-level windows whose WM_NAME or _NET_WM_NAME equals TITLE are considered.
"""
import sys

from Xlib import X, display, protocol


def windows_named(d, title):
    net_name = d.intern_atom("_NET_WM_NAME")
    utf8 = d.intern_atom("UTF8_STRING")
    found = []
    for w in d.screen().root.query_tree().children:
        try:
            prop = w.get_full_property(net_name, utf8)
            name = prop.value.decode("utf-8", "replace") if prop else w.get_wm_name()
        except Exception:  # a window gone meanwhile
            continue
        if name == title:
            found.append(w)
    return found


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("state", "count", "close"):
        sys.exit(__doc__)
    command, title = sys.argv[1], sys.argv[2]
    d = display.Display()
    found = windows_named(d, title)
    if command == "count":
        print(len(found))
        return
    if command == "state":
        # GTK keeps a hidden window (unmapped); several toplevels of one app may share a title.
        if any(w.get_attributes().map_state == X.IsViewable for w in found):
            print("viewable")
        else:
            print("hidden" if found else "none")
        return
    if not found:
        sys.exit(f"window.py: no window named {title!r}")
    protocols = d.intern_atom("WM_PROTOCOLS")
    delete = d.intern_atom("WM_DELETE_WINDOW")
    for w in found:
        event = protocol.event.ClientMessage(
            window=w, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0])
        )
        w.send_event(event, event_mask=X.NoEventMask)
    d.flush()


if __name__ == "__main__":
    main()
