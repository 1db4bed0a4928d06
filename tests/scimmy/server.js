// SCIMMY (npm) made into a minimal SCIM 2.0 server for scimsync's end-to-end tests
// (tests/e2e/scimmy.rs): SCIMMY parses, validates and patches; scimmy-routers serves the
// endpoints under /scim/v2; this file keeps Users and Groups in memory and adds what SCIMMY
// leaves to the handlers: ids, meta, userName / displayName uniqueness (409) and
// case-insensitive filtering on them.
//
//   node server.js [PORT] [--schema FILE --resource-type FILE]
//       PORT                   (or SCIMMY_PORT; 0 picks a free port)
//       --schema/--resource-type  as scim2-server's: the extension schemas the resource types
//                              name (beyond the enterprise one) are declared from FILE
//   SCIMMY_TOKEN=secret        bearer token every request must carry (required)
//
// Listens on 127.0.0.1 only and prints one line, "listening on PORT", once it accepts
// connections; the test harness reads the port from it.
import express from "express";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";
import {randomUUID} from "node:crypto";

const token = process.env.SCIMMY_TOKEN;
if (!token) {
    console.error("SCIMMY_TOKEN is not set");
    process.exit(2);
}
const args = process.argv.slice(2);
const option = (name) => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const value = args[i + 1];
    if (value === undefined) {
        console.error(`${name} needs a value`);
        process.exit(2);
    }
    args.splice(i, 2);
    return value;
};
const schemaFile = option("--schema");
const resourceTypeFile = option("--resource-type");
const portArg = args[0] ?? process.env.SCIMMY_PORT ?? "0";
const port = Number.parseInt(portArg, 10);
if (!/^\d+$/.test(portArg) || port > 65535 || args.length > 1) {
    console.error(`usage: server.js [PORT] [--schema FILE --resource-type FILE] (got ${process.argv.slice(2).join(" ")})`);
    process.exit(2);
}

// Attributes whose filters compare without case (caseExact false in RFC 7643 and unique).
const CASE_INSENSITIVE = new Set(["username", "displayname"]);

/** Lowercase the expected values on case-insensitive attributes of a plain filter copy. */
function foldFilter(filter) {
    for (const f of filter) {
        for (const [attr, expr] of Object.entries(f)) {
            if (!CASE_INSENSITIVE.has(attr.toLowerCase()) || !Array.isArray(expr)) continue;
            for (const e of (expr.every(Array.isArray) ? expr : [expr])) {
                const last = e.length - 1;
                if (typeof e[last] === "string" && e.length > 1 && !["pr", "np"].includes(String(e[last]).toLowerCase()))
                    e[last] = e[last].toLowerCase();
            }
        }
    }
    return filter;
}

/** A copy of a stored resource with its case-insensitive attributes lowercased, to filter on. */
function folded(r) {
    const out = {...r};
    for (const k of Object.keys(out))
        if (CASE_INSENSITIVE.has(k.toLowerCase()) && typeof out[k] === "string") out[k] = out[k].toLowerCase();
    return out;
}

/** In-memory store for one resource type, unique on `key` (ignoring case). */
function store(resourceType, key) {
    const items = new Map();
    const plain = (instance) => JSON.parse(JSON.stringify(instance));
    return {
        items,
        async egress(resource) {
            if (resource.id) {
                const found = items.get(resource.id);
                if (!found) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
                return found;
            }
            const all = [...items.values()];
            if (!resource.filter) return all;
            // SCIMMY's Filter is immutable: fold a plain copy and make a new one from it.
            const f = new SCIMMY.Types.Filter(foldFilter(JSON.parse(JSON.stringify(resource.filter))));
            return all.filter((r) => f.match([folded(r)]).length > 0);
        },
        async ingress(resource, instance) {
            const value = plain(instance);
            const wanted = String(value[key] ?? "").toLowerCase();
            for (const [id, other] of items)
                if (id !== resource.id && String(other[key] ?? "").toLowerCase() === wanted)
                    throw new SCIMMY.Types.Error(409, "uniqueness", `${key} ${value[key]} is already taken`);
            const now = new Date().toISOString();
            if (resource.id) {
                const old = items.get(resource.id);
                if (!old) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
                const version = Number.parseInt(String(old.meta.version).replace(/\D/g, ""), 10) + 1;
                const next = {...value, id: old.id, meta: {resourceType, created: old.meta.created, lastModified: now, version: `W/"${version}"`}};
                items.set(old.id, next);
                return next;
            }
            const id = randomUUID();
            const created = {...value, id, meta: {resourceType, created: now, lastModified: now, version: 'W/"1"'}};
            items.set(id, created);
            return created;
        },
        async degress(resource) {
            if (!items.delete(resource.id)) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
        },
    };
}

const users = store("User", "userName");
const groups = store("Group", "displayName");

// The enterprise extension is not part of SCIMMY's User until declared (without it SCIMMY
// drops the extension's attributes silently, where scim2-server refuses unknown URNs).
SCIMMY.Resources.declare(SCIMMY.Resources.User)
    .extend(SCIMMY.Schemas.EnterpriseUser, false)
    .ingress((r, i) => users.ingress(r, i))
    .egress((r) => users.egress(r))
    .degress(async (r) => {
        await users.degress(r);
        // A deleted user leaves every group it was in.
        for (const g of groups.items.values())
            if (Array.isArray(g.members)) g.members = g.members.filter((m) => m.value !== r.id);
    });
SCIMMY.Resources.declare(SCIMMY.Resources.Group)
    .ingress((r, i) => groups.ingress(r, i))
    .egress((r) => groups.egress(r))
    .degress((r) => groups.degress(r));

// Extension schemas from files (scim2-server's `--schema` / `--resource-type` format: SCIM
// Schema and ResourceType resources), e.g. Klaxoon's group licence.
if (schemaFile || resourceTypeFile) {
    if (!schemaFile || !resourceTypeFile) {
        console.error("--schema and --resource-type go together");
        process.exit(2);
    }
    const {readFileSync} = await import("node:fs");
    const list = (file) => [JSON.parse(readFileSync(file, "utf8"))].flat();
    const schemas = new Map(list(schemaFile).map((sc) => [sc.id, sc]));
    const attribute = (a) => new SCIMMY.Types.Attribute(
        a.type, a.name,
        {multiValued: !!a.multiValued, required: !!a.required, caseExact: !!a.caseExact, description: a.description ?? ""},
        (a.subAttributes ?? []).map(attribute));
    const resources = {User: SCIMMY.Resources.User, Group: SCIMMY.Resources.Group};
    for (const rt of list(resourceTypeFile)) {
        for (const ext of rt.schemaExtensions ?? []) {
            if (ext.schema === SCIMMY.Schemas.EnterpriseUser.definition.id) continue;
            const sc = schemas.get(ext.schema);
            if (!sc || !resources[rt.name]) {
                console.error(`no schema ${ext.schema} for resource type ${rt.name}`);
                process.exit(2);
            }
            resources[rt.name].extend(
                new SCIMMY.Types.SchemaDefinition(sc.name, sc.id, sc.description ?? "", sc.attributes.map(attribute)),
                !!ext.required);
        }
    }
}

const app = express();
app.use("/scim/v2", new SCIMMYRouters({
    type: "bearer",
    docUri: "https://datatracker.ietf.org/doc/html/rfc6750",
    handler: (req) => {
        if (req.header("authorization") !== `Bearer ${token}`) throw new Error("Authorization failed");
    },
}));

const server = app.listen(port, "127.0.0.1", () => {
    console.log(`listening on ${server.address().port}`);
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)));
