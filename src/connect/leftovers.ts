/**
 * Undoing what a kconnect that is gone left on the machine, for `up`, `down` and the daemon.
 * The journal knows no kind of change (`src/journal/undo.ts`): each owner of a host change
 * registers its own undo when its module loads. This module loads every one of them, so the
 * {@linkcode undoLeftovers} it exports knows every kind kconnect journals.
 *
 * @module
 */
import "../resolver/macos.ts";
import "../resolver/nrpt.ts";
import "../resolver/resolv_conf.ts";
import "../resolver/resolved.ts";
import "../routes/routes.ts";
import "../tun/undo.ts";

export { undoLeftovers } from "../journal/undo.ts";
