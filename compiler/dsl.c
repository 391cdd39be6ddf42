/* dsl.c — the DSL: symbolic tensors, layers, nets, losses, optimizers, model.
 *
 * Every function here is a shape rule: it checks its arguments and builds one
 * graph node that records the spec line it came from, or raises a Lua error
 * naming that line. Graph objects live in the compiler arena (xalloc), never
 * in memory that a Lua error could leak. */
#include "compiler.h"

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#define TENSOR "genc.tensor"
#define LAYER "genc.layer"
#define NET "genc.net"
#define MODEL "genc.model"
#define OPTIMIZER "genc.optimizer"

static const char *const activation_names[] = {"identity", "relu", "leaky_relu", "sigmoid", "tanh"};
enum { LAYER_INPUT = LAYER_HEADS + 1 }; /* only as the first entry of a layer list */
static const float DEFAULT_LEAKY_ALPHA = 0.2f;

/* ---- context, locations, errors ---------------------------------------- */

static Model *model_of(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

/* The spec line that called the running DSL function. */
static SrcLoc caller_loc(lua_State *L)
{
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        lua_getinfo(L, "Sl", &ar);
        if (ar.currentline > 0) {
            const char *src = ar.source[0] == '@' ? ar.source + 1 : ar.source;
            return (SrcLoc){xstrdup(src), ar.currentline};
        }
    }
    return (SrcLoc){"?", 0};
}

static _Noreturn void dsl_error(lua_State *L, SrcLoc loc, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lua_pushfstring(L, "%s:%d: %s", loc.file, loc.line, msg);
    lua_error(L);
    unreachable();
}

#define ERROR_HERE(L, ...) dsl_error(L, caller_loc(L), __VA_ARGS__)

/* Rejects keys of an options table that the function does not know: a typo
 * such as `lr_rate = 1e-3` must not be silently ignored. */
static void check_keys(lua_State *L, int idx, const char *fn, const char *const *allowed)
{
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TNUMBER) continue;
        const char *key = lua_tostring(L, -1);
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (key && strcmp(key, *a) == 0) ok = true;
        if (!ok) ERROR_HERE(L, "%s: unknown option '%s'", fn, key ? key : "?");
    }
}

static double opt_number(lua_State *L, int idx, const char *fn, const char *key, double dflt)
{
    lua_getfield(L, idx, key);
    double v = dflt;
    if (!lua_isnil(L, -1)) {
        if (!lua_isnumber(L, -1)) ERROR_HERE(L, "%s: option '%s' must be a number", fn, key);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static Dims read_dims(lua_State *L, int idx, const char *fn)
{
    Dims d = {0};
    if (lua_isinteger(L, idx)) {
        d.rank = 1;
        d.dim[0] = (int)lua_tointeger(L, idx);
    } else if (lua_istable(L, idx)) {
        d.rank = (int)luaL_len(L, idx);
        if (d.rank > MAX_DIMS) ERROR_HERE(L, "%s: at most %d dimensions", fn, MAX_DIMS);
        for (int i = 0; i < d.rank; i++) {
            lua_geti(L, idx, i + 1);
            if (!lua_isinteger(L, -1)) ERROR_HERE(L, "%s: dimension %d is not an integer", fn, i + 1);
            lua_Integer v = lua_tointeger(L, -1);
            if (v <= 0 || v > (1 << 24)) ERROR_HERE(L, "%s: dimension %d is %lld; must be positive", fn, i + 1, (long long)v);
            d.dim[i] = (int)v;
            lua_pop(L, 1);
        }
    } else {
        ERROR_HERE(L, "%s: expected a shape such as {1, 28, 28}", fn);
    }
    if (d.rank == 0) ERROR_HERE(L, "%s: the shape is empty", fn);
    if (d.dim[0] <= 0) ERROR_HERE(L, "%s: dimensions must be positive", fn);
    return d;
}

static bool dims_equal(Dims a, Dims b)
{
    if (a.rank != b.rank) return false;
    for (int i = 0; i < a.rank; i++)
        if (a.dim[i] != b.dim[i]) return false;
    return true;
}

/* ---- nodes -------------------------------------------------------------------- */

Node *new_node(Model *m, OpKind op, SrcLoc loc)
{
    Node *n = xalloc(sizeof *n);
    n->id = m->nodes.len;
    n->op = op;
    n->loc = loc;
    n->batched = true;
    vec_push(&m->nodes, n);
    return n;
}

static void push_tensor(lua_State *L, Node *n)
{
    Node **ud = lua_newuserdatauv(L, sizeof(Node *), 0);
    *ud = n;
    luaL_setmetatable(L, TENSOR);
}

static Node *to_tensor(lua_State *L, int idx, const char *fn)
{
    Node **ud = luaL_testudata(L, idx, TENSOR);
    if (!ud) ERROR_HERE(L, "%s: argument %d must be a tensor, got %s", fn, idx, luaL_typename(L, idx));
    return *ud;
}

static Node *unary(lua_State *L, OpKind op, Node *x)
{
    Node *n = new_node(model_of(L), op, caller_loc(L));
    n->in[0] = x;
    n->n_in = 1;
    n->dims = x->dims;
    n->batched = x->batched;
    return n;
}

static Node *binary(lua_State *L, OpKind op, Node *a, Node *b, const char *fn)
{
    if (a->batched != b->batched || !dims_equal(a->dims, b->dims))
        ERROR_HERE(L, "%s: shapes %s and %s differ", fn, dims_str(a->dims, a->batched), dims_str(b->dims, b->batched));
    Node *n = unary(L, op, a);
    n->in[1] = b;
    n->n_in = 2;
    return n;
}

static Node *affine(lua_State *L, Node *x, double scale, double shift)
{
    Node *n = unary(L, OP_AFFINE, x);
    n->scale = (float)scale;
    n->shift = (float)shift;
    return n;
}

/* Arithmetic: tensor with tensor, or tensor with a number (either side). */
static int arith(lua_State *L, char op)
{
    bool num_a = lua_isnumber(L, 1) && !lua_isuserdata(L, 1);
    bool num_b = lua_isnumber(L, 2) && !lua_isuserdata(L, 2);
    const char *fn = op == '+' ? "add" : op == '-' ? "sub" : op == '*' ? "mul" : "div";
    Node *r;
    if (num_a || num_b) {
        double k = lua_tonumber(L, num_a ? 1 : 2);
        Node *t = to_tensor(L, num_a ? 2 : 1, fn);
        switch (op) {
        case '+': r = affine(L, t, 1, k); break;
        case '-': r = num_a ? affine(L, t, -1, k) : affine(L, t, 1, -k); break;
        case '*': r = affine(L, t, k, 0); break;
        default:
            if (num_a) {
                r = unary(L, OP_RECIPROCAL, t);
                r->scale = (float)k;
            } else {
                if (k == 0) ERROR_HERE(L, "div: division by the constant 0");
                r = affine(L, t, 1 / k, 0);
            }
        }
    } else {
        Node *a = to_tensor(L, 1, fn), *b = to_tensor(L, 2, fn);
        OpKind kind = op == '+' ? OP_ADD : op == '-' ? OP_SUB : op == '*' ? OP_MUL : OP_DIV;
        r = binary(L, kind, a, b, fn);
    }
    push_tensor(L, r);
    return 1;
}

static int t_add(lua_State *L) { return arith(L, '+'); }
static int t_sub(lua_State *L) { return arith(L, '-'); }
static int t_mul(lua_State *L) { return arith(L, '*'); }
static int t_div(lua_State *L) { return arith(L, '/'); }
static int t_unm(lua_State *L)
{
    push_tensor(L, affine(L, to_tensor(L, 1, "negate"), -1, 0));
    return 1;
}

static int t_tostring(lua_State *L)
{
    Node *n = to_tensor(L, 1, "tostring");
    lua_pushfstring(L, "tensor%s", dims_str(n->dims, n->batched));
    return 1;
}

static int t_index(lua_State *L)
{
    Node *n = to_tensor(L, 1, "index");
    const char *key = luaL_checkstring(L, 2);
    if (strcmp(key, "shape") == 0) {
        lua_createtable(L, n->dims.rank, 0);
        for (int i = 0; i < n->dims.rank; i++) {
            lua_pushinteger(L, n->dims.dim[i]);
            lua_rawseti(L, -2, i + 1);
        }
        return 1;
    }
    ERROR_HERE(L, "a tensor has no field '%s' (a net with heads returns a table of tensors)", key);
}

static int f_exp(lua_State *L)
{
    push_tensor(L, unary(L, OP_EXP, to_tensor(L, 1, "exp")));
    return 1;
}

static int f_log(lua_State *L)
{
    push_tensor(L, unary(L, OP_LOG, to_tensor(L, 1, "log")));
    return 1;
}

static Node *scalar_of(lua_State *L, OpKind op, Node *x)
{
    Node *n = unary(L, op, x);
    n->dims = (Dims){0};
    n->batched = false;
    return n;
}

static int f_sum(lua_State *L)
{
    Node *n = scalar_of(L, OP_SUM, to_tensor(L, 1, "sum"));
    n->scale = 1;
    push_tensor(L, n);
    return 1;
}

/* mean divides by every element, batch included: the emitter knows the batch. */
static int f_mean(lua_State *L)
{
    Node *n = scalar_of(L, OP_SUM, to_tensor(L, 1, "mean"));
    n->scale = 0; /* 0 marks a mean */
    push_tensor(L, n);
    return 1;
}

static int loss(lua_State *L, OpKind op, const char *fn)
{
    Node *pred = to_tensor(L, 1, fn);
    if (!pred->batched) ERROR_HERE(L, "%s: the prediction is a scalar; pass the network's output", fn);
    Node *n;
    if (lua_isnumber(L, 2) && !lua_isuserdata(L, 2)) {
        n = scalar_of(L, op, pred);
        n->has_const_target = true;
        n->target = (float)lua_tonumber(L, 2);
    } else {
        Node *target = to_tensor(L, 2, fn);
        if (!dims_equal(pred->dims, target->dims) || !target->batched)
            ERROR_HERE(L, "%s: prediction %s and target %s differ in shape", fn,
                       dims_str(pred->dims, true), dims_str(target->dims, target->batched));
        n = scalar_of(L, op, pred);
        n->in[1] = target;
        n->n_in = 2;
    }
    push_tensor(L, n);
    return 1;
}

static int f_mse(lua_State *L) { return loss(L, OP_MSE, "mse"); }
static int f_bce(lua_State *L) { return loss(L, OP_BCE, "bce"); }
static int f_bce_logits(lua_State *L) { return loss(L, OP_BCE_LOGITS, "bce_logits"); }

static int f_kl_normal(lua_State *L)
{
    Node *mean = to_tensor(L, 1, "kl_normal"), *logvar = to_tensor(L, 2, "kl_normal");
    if (mean->dims.rank != 1 || !mean->batched)
        ERROR_HERE(L, "kl_normal: mean has shape %s; expected [B,latent]", dims_str(mean->dims, mean->batched));
    Node *n = binary(L, OP_KL_NORMAL, mean, logvar, "kl_normal");
    n->dims = (Dims){0};
    n->batched = false;
    push_tensor(L, n);
    return 1;
}

static int f_concat(lua_State *L)
{
    int top = lua_gettop(L);
    if (top == 1 && lua_istable(L, 1) && !lua_isuserdata(L, 1)) { /* concat{a, b, ...} */
        int len = (int)luaL_len(L, 1);
        for (int i = 1; i <= len; i++) lua_geti(L, 1, i);
        lua_remove(L, 1);
        top = len;
    }
    if (top < 2) ERROR_HERE(L, "concat: needs two or more tensors");
    Node *acc = to_tensor(L, 1, "concat");
    for (int i = 2; i <= top; i++) {
        Node *b = to_tensor(L, i, "concat");
        if (acc->dims.rank != 1 || b->dims.rank != 1 || !acc->batched || !b->batched)
            ERROR_HERE(L, "concat: joins flat tensors [B,n]; got %s and %s (flatten them first)",
                       dims_str(acc->dims, acc->batched), dims_str(b->dims, b->batched));
        Node *n = unary(L, OP_CONCAT, acc);
        n->in[1] = b;
        n->n_in = 2;
        n->dims.dim[0] = acc->dims.dim[0] + b->dims.dim[0];
        acc = n;
    }
    push_tensor(L, acc);
    return 1;
}

static int f_onehot(lua_State *L)
{
    Node *labels = to_tensor(L, 1, "onehot");
    lua_Integer classes = luaL_checkinteger(L, 2);
    if (labels->op != OP_INPUT || labels->input_kind != INPUT_LABELS)
        ERROR_HERE(L, "onehot: takes data.labels");
    if (classes < 2 || classes > 65536) ERROR_HERE(L, "onehot: %lld classes; expected 2 or more", (long long)classes);
    Node *n = unary(L, OP_ONEHOT, labels);
    n->dims = (Dims){1, {(int)classes}};
    n->classes = (int)classes;
    push_tensor(L, n);
    return 1;
}

/* ---- inputs ------------------------------------------------------------------- */

static Node *new_input(Model *m, InputKind kind, const char *name, Dims dims, SrcLoc loc)
{
    Node *n = new_node(m, OP_INPUT, loc);
    n->input_kind = kind;
    n->input_name = name;
    n->dims = dims;
    n->what = name;
    return n;
}

static int noise(lua_State *L, InputKind kind)
{
    const char *fn = kind == INPUT_NORMAL ? "noise.normal" : "noise.uniform";
    luaL_checktype(L, 1, LUA_TTABLE);
    check_keys(L, 1, fn, (const char *const[]){"name", "lo", "hi", NULL});
    Dims d = read_dims(L, 1, fn);
    lua_getfield(L, 1, "name");
    const char *name = lua_isnil(L, -1) ? NULL : lua_tostring(L, -1);
    if (name && !is_identifier(name)) ERROR_HERE(L, "%s: name '%s' is not an identifier", fn, name);
    Model *m = model_of(L);
    Node *n = new_input(m, kind, name ? xstrdup(name) : xprintf("noise%d", m->nodes.len), d, caller_loc(L));
    if (kind == INPUT_UNIFORM) {
        n->lo = (float)opt_number(L, 1, fn, "lo", 0);
        n->hi = (float)opt_number(L, 1, fn, "hi", 1);
        if (!(n->lo < n->hi)) ERROR_HERE(L, "%s: needs lo < hi", fn);
    }
    push_tensor(L, n);
    return 1;
}

static int f_noise_normal(lua_State *L) { return noise(L, INPUT_NORMAL); }
static int f_noise_uniform(lua_State *L) { return noise(L, INPUT_UNIFORM); }

/* ---- layers ------------------------------------------------------------------- */

static Layer *new_layer(lua_State *L, int kind, SrcLoc loc)
{
    Layer **ud = lua_newuserdatauv(L, sizeof(Layer *), 0);
    *ud = xalloc(sizeof(Layer));
    (*ud)->kind = kind;
    (*ud)->loc = loc;
    luaL_setmetatable(L, LAYER);
    return *ud;
}

static Layer *to_layer(lua_State *L, int idx) { return *(Layer **)luaL_checkudata(L, idx, LAYER); }

static int f_input(lua_State *L)
{
    Dims d = read_dims(L, 1, "input");
    new_layer(L, LAYER_INPUT, caller_loc(L))->to = d;
    return 1;
}

int window_output(int in, int kernel, int stride, bool same, bool transpose, int *pad_before)
{
    int out, total;
    if (transpose) {
        out = same ? in * stride : (in - 1) * stride + kernel;
        total = same ? (kernel > stride ? kernel - stride : 0) : 0; /* the conv from out back to in */
    } else {
        if (!same && in < kernel) return 0;
        out = same ? (in + stride - 1) / stride : (in - kernel) / stride + 1;
        total = same ? (out - 1) * stride + kernel - in : 0;
        if (total < 0) total = 0;
    }
    *pad_before = total / 2;
    return out;
}

/* An integer option given at position pos of the table or under key (either
 * may be absent: pos 0, key NULL); a negative dflt makes it required. */
static int int_option(lua_State *L, int idx, const char *fn, int pos, const char *key, int dflt, int lo, int hi)
{
    if (pos) lua_geti(L, idx, pos);
    if (!pos || lua_isnil(L, -1)) {
        if (pos) lua_pop(L, 1);
        if (key) lua_getfield(L, idx, key);
        else lua_pushnil(L);
    }
    int v = dflt;
    if (!lua_isnil(L, -1)) {
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < lo || lua_tointeger(L, -1) > hi)
            ERROR_HERE(L, "%s: %s must be an integer from %d to %d", fn, key ? key : "the size", lo, hi);
        v = (int)lua_tointeger(L, -1);
    } else if (dflt < 0) {
        ERROR_HERE(L, "%s: %s is required", fn, key ? key : "the size");
    }
    lua_pop(L, 1);
    return v;
}

/* init = normal {stddev = s} (a table made by normal) or glorot_uniform, the default. */
static void read_init(lua_State *L, int idx, const char *fn, Layer *l)
{
    l->init = INIT_GLOROT_UNIFORM;
    lua_getfield(L, idx, "init");
    if (!lua_isnil(L, -1)) {
        lua_getfield(L, -1, "__init");
        const char *kind = lua_istable(L, -2) ? lua_tostring(L, -1) : NULL;
        if (!kind) ERROR_HERE(L, "%s: init must be glorot_uniform or normal {stddev = ...}", fn);
        if (strcmp(kind, "normal") == 0) {
            lua_getfield(L, -2, "stddev");
            l->init = INIT_NORMAL;
            l->init_scale = (float)lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static bool read_bool(lua_State *L, int idx, const char *key, bool dflt)
{
    lua_getfield(L, idx, key);
    bool v = lua_isnil(L, -1) ? dflt : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static bool read_padding(lua_State *L, int idx, const char *fn, const char *dflt)
{
    lua_getfield(L, idx, "padding");
    const char *p = lua_isnil(L, -1) ? dflt : lua_tostring(L, -1);
    if (!p || (strcmp(p, "same") != 0 && strcmp(p, "valid") != 0))
        ERROR_HERE(L, "%s: padding must be \"same\" or \"valid\"", fn);
    bool same = strcmp(p, "same") == 0;
    lua_pop(L, 1);
    return same;
}

static int f_normal(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    check_keys(L, 1, "normal", (const char *const[]){"stddev", NULL});
    double stddev = opt_number(L, 1, "normal", "stddev", 0.05);
    if (!(stddev > 0)) ERROR_HERE(L, "normal: stddev must be positive");
    lua_createtable(L, 0, 2);
    lua_pushstring(L, "normal");
    lua_setfield(L, -2, "__init");
    lua_pushnumber(L, stddev);
    lua_setfield(L, -2, "stddev");
    return 1;
}

static int f_dense(lua_State *L)
{
    if (lua_isinteger(L, 1)) { /* dense(128) */
        lua_createtable(L, 1, 0);
        lua_pushvalue(L, 1);
        lua_rawseti(L, -2, 1);
        lua_replace(L, 1);
    }
    if (!lua_istable(L, 1)) ERROR_HERE(L, "dense: expected a number of units, as in dense(128) or dense{128, bias = false}");
    check_keys(L, 1, "dense", (const char *const[]){"units", "init", "bias", NULL});
    int units = int_option(L, 1, "dense", 1, "units", -1, 1, 1 << 24);
    Layer *l = new_layer(L, LAYER_DENSE, caller_loc(L));
    l->units = units;
    l->has_bias = read_bool(L, 1, "bias", true);
    read_init(L, 1, "dense", l);
    return 1;
}

static int conv_layer(lua_State *L, LayerKind kind, const char *fn)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    check_keys(L, 1, fn, (const char *const[]){"filters", "kernel", "stride", "padding", "init", "bias", NULL});
    int filters = int_option(L, 1, fn, 1, "filters", -1, 1, 1 << 16);
    int kernel = int_option(L, 1, fn, 2, "kernel", -1, 1, 64);
    Layer *l = new_layer(L, (int)kind, caller_loc(L));
    l->units = filters;
    l->kernel = kernel;
    l->stride = int_option(L, 1, fn, 0, "stride", 1, 1, 64);
    l->same = read_padding(L, 1, fn, "same");
    l->has_bias = read_bool(L, 1, "bias", true);
    read_init(L, 1, fn, l);
    return 1;
}

static int f_conv2d(lua_State *L) { return conv_layer(L, LAYER_CONV2D, "conv2d"); }
static int f_conv2d_transpose(lua_State *L) { return conv_layer(L, LAYER_CONV2D_TRANSPOSE, "conv2d_transpose"); }

static int f_maxpool2d(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    check_keys(L, 1, "maxpool2d", (const char *const[]){"size", "stride", "padding", NULL});
    lua_settop(L, 1);
    Layer *l = new_layer(L, LAYER_MAXPOOL2D, caller_loc(L));
    l->kernel = int_option(L, 1, "maxpool2d", 1, "size", 2, 1, 64);
    l->stride = int_option(L, 1, "maxpool2d", 0, "stride", l->kernel, 1, 64);
    l->same = read_padding(L, 1, "maxpool2d", "valid");
    return 1;
}

/* Keras's defaults: momentum 0.99 (the fraction of the running statistic kept), eps 1e-3. */
static int f_batchnorm(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    check_keys(L, 1, "batchnorm", (const char *const[]){"momentum", "eps", NULL});
    Layer *l = new_layer(L, LAYER_BATCHNORM, caller_loc(L));
    l->momentum = (float)opt_number(L, 1, "batchnorm", "momentum", 0.99);
    l->eps = (float)opt_number(L, 1, "batchnorm", "eps", 1e-3);
    if (!(l->momentum >= 0 && l->momentum < 1)) ERROR_HERE(L, "batchnorm: momentum must be in [0, 1)");
    if (!(l->eps > 0)) ERROR_HERE(L, "batchnorm: eps must be positive");
    return 1;
}

static int f_dropout(lua_State *L)
{
    double rate = lua_isnumber(L, 1) ? lua_tonumber(L, 1) : -1;
    if (lua_istable(L, 1)) {
        check_keys(L, 1, "dropout", (const char *const[]){"rate", NULL});
        lua_getfield(L, 1, "rate");
        rate = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : -1;
        if (lua_isnil(L, -1)) {
            lua_geti(L, 1, 1);
            rate = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : -1;
        }
    }
    if (!(rate >= 0 && rate < 1)) ERROR_HERE(L, "dropout: rate must be in [0, 1), as in dropout(0.3)");
    new_layer(L, LAYER_DROPOUT, caller_loc(L))->rate = (float)rate;
    return 1;
}

static int f_reshape(lua_State *L)
{
    Dims d = read_dims(L, 1, "reshape");
    new_layer(L, LAYER_RESHAPE, caller_loc(L))->to = d;
    return 1;
}

static int f_heads(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    Layer *h = new_layer(L, LAYER_HEADS, caller_loc(L));
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        n++;
    }
    if (n > 16) ERROR_HERE(L, "heads: at most 16 heads");
    if (n == 0) ERROR_HERE(L, "heads: expected named layers, as in heads{mean = dense(20), logvar = dense(20)}");
    h->head_names = xalloc(sizeof(char *) * (size_t)n);
    h->head_layers = xalloc(sizeof(Layer **) * (size_t)n);
    h->head_len = xalloc(sizeof(int) * (size_t)n);
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (!is_identifier(name)) ERROR_HERE(L, "heads: every head needs a name, as in mean = dense(20)");
        int i = h->n_heads++;
        h->head_names[i] = xstrdup(name);
        if (luaL_testudata(L, -1, LAYER)) {
            h->head_len[i] = 1;
            h->head_layers[i] = xalloc(sizeof(Layer *));
            h->head_layers[i][0] = to_layer(L, -1);
        } else if (lua_istable(L, -1)) {
            int len = (int)luaL_len(L, -1);
            h->head_len[i] = len;
            h->head_layers[i] = xalloc(sizeof(Layer *) * (size_t)(len ? len : 1));
            for (int k = 0; k < len; k++) {
                lua_geti(L, -1, k + 1);
                if (!luaL_testudata(L, -1, LAYER)) ERROR_HERE(L, "heads: head '%s' entry %d is not a layer", name, k + 1);
                h->head_layers[i][k] = to_layer(L, -1);
                lua_pop(L, 1);
            }
        } else {
            ERROR_HERE(L, "heads: head '%s' must be a layer or a list of layers", name);
        }
        lua_pop(L, 1);
    }
    /* Sort heads by name so that the order (and the parameter block) does not
     * depend on Lua's table traversal order. */
    for (int i = 1; i < h->n_heads; i++)
        for (int j = i; j > 0 && strcmp(h->head_names[j - 1], h->head_names[j]) > 0; j--) {
            const char *tn = h->head_names[j]; h->head_names[j] = h->head_names[j - 1]; h->head_names[j - 1] = tn;
            Layer **tl = h->head_layers[j]; h->head_layers[j] = h->head_layers[j - 1]; h->head_layers[j - 1] = tl;
            int len = h->head_len[j]; h->head_len[j] = h->head_len[j - 1]; h->head_len[j - 1] = len;
        }
    return 1;
}

static Node *apply_activation(Model *m, Node *x, Activation act, float alpha, SrcLoc loc, const char *what)
{
    Node *n = new_node(m, OP_ACTIVATION, loc);
    n->in[0] = x;
    n->n_in = 1;
    n->dims = x->dims;
    n->batched = x->batched;
    n->act = act;
    n->alpha = alpha;
    n->what = what;
    return n;
}

/* dropout's mask is an input: the trainer draws it uniform in [0, 1) for every
 * step, so the generated code needs no RNG and a reference run can reuse it. */
static Node *apply_dropout(Model *m, Node *x, float rate, SrcLoc loc, const char *what)
{
    Node *mask = new_input(m, INPUT_UNIFORM, xprintf("dropout_mask%d", m->nodes.len), x->dims, loc);
    mask->lo = 0;
    mask->hi = 1;
    Node *n = new_node(m, OP_DROPOUT, loc);
    n->in[0] = x;
    n->in[1] = mask;
    n->n_in = 2;
    n->dims = x->dims;
    n->rate = rate;
    n->what = what;
    return n;
}

static Node *apply_maxpool(Model *m, Node *x, Window w, Dims out, SrcLoc loc, const char *what)
{
    Node *n = new_node(m, OP_MAXPOOL2D, loc);
    n->in[0] = x;
    n->n_in = 1;
    n->dims = out;
    n->window = w;
    n->what = what;
    return n;
}

/* The output shape of a window layer on a [C,H,W] input; raises at the layer's line. */
static Dims window_dims(lua_State *L, const Layer *l, Dims in, int channels, Window *w, const char *fn)
{
    if (in.rank != 3)
        dsl_error(L, l->loc, "%s: input has shape %s per sample; expected [channels,height,width]", fn,
                  dims_str(in, false));
    bool transpose = l->kind == LAYER_CONV2D_TRANSPOSE;
    int pt, pl;
    int oh = window_output(in.dim[1], l->kernel, l->stride, l->same, transpose, &pt);
    int ow = window_output(in.dim[2], l->kernel, l->stride, l->same, transpose, &pl);
    if (oh <= 0 || ow <= 0)
        dsl_error(L, l->loc, "%s: a %dx%d window does not fit a %dx%d input with padding \"valid\"", fn, l->kernel,
                  l->kernel, in.dim[1], in.dim[2]);
    *w = (Window){l->kernel, l->stride, pt, pl};
    return (Dims){3, {channels, oh, ow}};
}

static Node *apply_reshape(Model *m, Node *x, Dims to, SrcLoc loc, const char *what)
{
    Node *n = new_node(m, OP_RESHAPE, loc);
    n->in[0] = x;
    n->n_in = 1;
    n->dims = to;
    n->batched = true;
    n->what = what;
    return n;
}

/* A layer called on a tensor outside a net: relu(x), flatten(x), leaky_relu(0.1). */
static int layer_call(lua_State *L)
{
    Layer *layer = to_layer(L, 1);
    if (layer->kind == LAYER_ACTIVATION && layer->act == ACT_LEAKY_RELU && !luaL_testudata(L, 2, TENSOR)) {
        double alpha = lua_isnumber(L, 2) ? lua_tonumber(L, 2) : (lua_istable(L, 2) ? opt_number(L, 2, "leaky_relu", "alpha", DEFAULT_LEAKY_ALPHA) : -1);
        if (!(alpha > 0 && alpha < 1)) ERROR_HERE(L, "leaky_relu: alpha must be between 0 and 1, as in leaky_relu(0.2)");
        Layer *l = new_layer(L, LAYER_ACTIVATION, caller_loc(L));
        l->act = ACT_LEAKY_RELU;
        l->alpha = (float)alpha;
        return 1;
    }
    Node *x = to_tensor(L, 2, "layer");
    Model *m = model_of(L);
    switch (layer->kind) {
    case LAYER_ACTIVATION:
        push_tensor(L, apply_activation(m, x, layer->act, layer->alpha, caller_loc(L), activation_names[layer->act]));
        return 1;
    case LAYER_MAXPOOL2D: {
        Window w;
        Dims out = window_dims(L, layer, x->dims, x->dims.rank == 3 ? x->dims.dim[0] : 0, &w, "maxpool2d");
        push_tensor(L, apply_maxpool(m, x, w, out, caller_loc(L), "maxpool2d"));
        return 1;
    }
    case LAYER_DROPOUT:
        push_tensor(L, apply_dropout(m, x, layer->rate, caller_loc(L), "dropout"));
        return 1;
    case LAYER_RESHAPE: {
        Dims to = layer->to;
        if (to.rank == 0) to = (Dims){1, {(int)dims_count(x->dims)}};
        if (!x->batched || dims_count(to) != dims_count(x->dims))
            ERROR_HERE(L, "reshape: cannot reshape %s to %s", dims_str(x->dims, x->batched), dims_str(to, true));
        push_tensor(L, apply_reshape(m, x, to, caller_loc(L), "reshape"));
        return 1;
    }
    default:
        ERROR_HERE(L, "this layer has parameters; use it inside a net");
    }
}

static int layer_tostring(lua_State *L)
{
    Layer *l = to_layer(L, 1);
    lua_pushfstring(L, "layer(%s)", l->kind == LAYER_ACTIVATION ? activation_names[l->act] : "...");
    return 1;
}

/* ---- nets -------------------------------------------------------------------- */

static Param *new_param(Model *m, Net *net, const char *name, Dims dims, InitKind init, float init_scale)
{
    Param *p = xalloc(sizeof *p);
    p->name = name;
    p->dims = dims;
    p->init = init;
    p->init_scale = init_scale;
    p->net = net;
    p->index = m->params.len;
    vec_push(&m->params, p);
    vec_push(&net->params, p);
    return p;
}

/* A weight with its Glorot fans, and its bias if the layer has one. */
static void new_weight_and_bias(Model *m, Net *net, Layer *l, Dims weight_dims, int fan_in, int fan_out, int units)
{
    l->weight = new_param(m, net, xprintf("%s.weight", l->what), weight_dims, l->init, l->init_scale);
    l->weight->fan_in = fan_in;
    l->weight->fan_out = fan_out;
    l->bias = l->has_bias ? new_param(m, net, xprintf("%s.bias", l->what), (Dims){1, {units}}, INIT_ZEROS, 0) : NULL;
}

static Param *new_state(Model *m, Net *net, const char *name, Dims dims, InitKind init)
{
    Param *p = xalloc(sizeof *p);
    p->name = name;
    p->dims = dims;
    p->init = init;
    p->is_state = true;
    p->net = net;
    p->index = m->state.len;
    vec_push(&m->state, p);
    return p;
}

/* Binds a layer list to its input shape: checks every shape, creates the
 * parameters, and returns bound copies (a layer object may appear in two nets). */
static Dims bind_layers(lua_State *L, Model *m, Net *net, const char *prefix, Layer **specs, int n,
                        Dims dims, Layer ***bound_out)
{
    Layer **bound = xalloc(sizeof(Layer *) * (size_t)(n ? n : 1));
    int count[LAYER_HEADS + 1] = {0}; /* per kind, for names: dense1, conv2d2, ... */
    for (int i = 0; i < n; i++) {
        Layer *l = xalloc(sizeof *l);
        *l = *specs[i];
        bound[i] = l;
        l->in_dims = dims;
        switch ((int)l->kind) {
        case LAYER_INPUT:
            dsl_error(L, l->loc, "input: only the first entry of a net can be input{...}");
        case LAYER_DENSE:
            if (dims.rank != 1)
                dsl_error(L, l->loc, "dense: input has shape %s per sample; flatten it first", dims_str(dims, false));
            l->what = xprintf("%s.dense%d", prefix, ++count[l->kind]);
            new_weight_and_bias(m, net, l, (Dims){2, {l->units, dims.dim[0]}}, dims.dim[0], l->units, l->units);
            dims = (Dims){1, {l->units}};
            break;
        case LAYER_CONV2D:
        case LAYER_CONV2D_TRANSPOSE: {
            bool transpose = l->kind == LAYER_CONV2D_TRANSPOSE;
            const char *fn = transpose ? "conv2d_transpose" : "conv2d";
            Dims out = window_dims(L, l, dims, l->units, &l->window, fn);
            l->what = xprintf("%s.%s%d", prefix, fn, ++count[l->kind]);
            int c = dims.dim[0], kk = l->kernel * l->kernel;
            Dims w = transpose ? (Dims){4, {c, l->units, l->kernel, l->kernel}}
                               : (Dims){4, {l->units, c, l->kernel, l->kernel}};
            new_weight_and_bias(m, net, l, w, c * kk, l->units * kk, l->units);
            dims = out;
            break;
        }
        case LAYER_MAXPOOL2D:
            dims = window_dims(L, l, dims, dims.rank == 3 ? dims.dim[0] : 0, &l->window, "maxpool2d");
            l->what = xprintf("%s.maxpool2d%d", prefix, ++count[l->kind]);
            break;
        case LAYER_BATCHNORM: {
            if (dims.rank != 1 && dims.rank != 3)
                dsl_error(L, l->loc, "batchnorm: input has shape %s per sample; expected [features] or [C,H,W]",
                          dims_str(dims, false));
            Dims channels = {1, {dims.dim[0]}};
            l->what = xprintf("%s.batchnorm%d", prefix, ++count[l->kind]);
            l->weight = new_param(m, net, xprintf("%s.gamma", l->what), channels, INIT_ONES, 0);
            l->bias = new_param(m, net, xprintf("%s.beta", l->what), channels, INIT_ZEROS, 0);
            l->running_mean = new_state(m, net, xprintf("%s.running_mean", l->what), channels, INIT_ZEROS);
            l->running_var = new_state(m, net, xprintf("%s.running_var", l->what), channels, INIT_ONES);
            break;
        }
        case LAYER_DROPOUT:
            l->what = xprintf("%s.dropout%d", prefix, ++count[l->kind]);
            break;
        case LAYER_ACTIVATION:
            l->what = xprintf("%s.%s", prefix, activation_names[l->act]);
            break;
        case LAYER_RESHAPE: {
            Dims to = l->to.rank == 0 ? (Dims){1, {(int)dims_count(dims)}} : l->to;
            if (dims_count(to) != dims_count(dims))
                dsl_error(L, l->loc, "reshape: cannot reshape %s (%zu values) to %s (%zu values)", dims_str(dims, false),
                          dims_count(dims), dims_str(to, false), dims_count(to));
            l->to = to;
            l->what = xprintf("%s.%s", prefix, specs[i]->to.rank == 0 ? "flatten" : "reshape");
            dims = to;
            break;
        }
        case LAYER_HEADS:
            if (i != n - 1) dsl_error(L, l->loc, "heads: must be the last entry of a net");
            l->head_layers = xalloc(sizeof(Layer **) * (size_t)l->n_heads);
            for (int h = 0; h < l->n_heads; h++)
                bind_layers(L, m, net, xprintf("%s.%s", prefix, l->head_names[h]), specs[i]->head_layers[h],
                            l->head_len[h], dims, &l->head_layers[h]);
            break;
        }
        l->out_dims = dims;
    }
    *bound_out = bound;
    return dims;
}

/* Replays a bound layer list on x; returns the number of outputs written. */
static int apply_layers(Model *m, Layer **layers, int n, Node *x, Node **outputs, bool training)
{
    static const OpKind ops[] = {[LAYER_DENSE] = OP_DENSE, [LAYER_CONV2D] = OP_CONV2D,
                                 [LAYER_CONV2D_TRANSPOSE] = OP_CONV2D_TRANSPOSE, [LAYER_BATCHNORM] = OP_BATCHNORM};
    for (int i = 0; i < n; i++) {
        Layer *l = layers[i];
        switch (l->kind) {
        case LAYER_DENSE:
        case LAYER_CONV2D:
        case LAYER_CONV2D_TRANSPOSE:
        case LAYER_BATCHNORM: {
            Node *d = new_node(m, ops[l->kind], l->loc);
            d->in[0] = x;
            d->n_in = 1;
            d->dims = l->out_dims;
            d->weight = l->weight;
            d->bias = l->bias;
            d->running_mean = l->running_mean;
            d->running_var = l->running_var;
            d->window = l->window;
            d->momentum = l->momentum;
            d->eps = l->eps;
            d->training = training;
            d->what = l->what;
            x = d;
            break;
        }
        case LAYER_MAXPOOL2D: x = apply_maxpool(m, x, l->window, l->out_dims, l->loc, l->what); break;
        case LAYER_DROPOUT:
            if (training) x = apply_dropout(m, x, l->rate, l->loc, l->what); /* inference: the identity */
            break;
        case LAYER_ACTIVATION: x = apply_activation(m, x, l->act, l->alpha, l->loc, l->what); break;
        case LAYER_RESHAPE: x = apply_reshape(m, x, l->to, l->loc, l->what); break;
        case LAYER_HEADS:
            for (int h = 0; h < l->n_heads; h++)
                apply_layers(m, l->head_layers[h], l->head_len[h], x, &outputs[h], training);
            return l->n_heads;
        }
    }
    outputs[0] = x;
    return 1;
}

int apply_net(Model *m, Net *net, Node *x, Node **outputs, bool training)
{
    return apply_layers(m, net->layers, net->n_layers, x, outputs, training);
}

static Net *to_net(lua_State *L, int idx) { return *(Net **)luaL_checkudata(L, idx, NET); }

static int net_call(lua_State *L)
{
    Net *net = to_net(L, 1);
    Node *x = to_tensor(L, 2, net->name);
    if (!x->batched || !dims_equal(x->dims, net->input))
        ERROR_HERE(L, "%s: input has shape %s; the net takes %s", net->name, dims_str(x->dims, x->batched),
                   dims_str(net->input, true));
    Node *outputs[64];
    int n = apply_net(model_of(L), net, x, outputs, true);
    if (!net->output_names) {
        push_tensor(L, outputs[0]);
        return 1;
    }
    lua_createtable(L, 0, n);
    for (int i = 0; i < n; i++) {
        push_tensor(L, outputs[i]);
        lua_setfield(L, -2, net->output_names[i]);
    }
    return 1;
}

static int net_tostring(lua_State *L)
{
    lua_pushfstring(L, "net(%s)", to_net(L, 1)->name);
    return 1;
}

static int net_define(lua_State *L)
{
    Model *m = model_of(L);
    const char *name = lua_tostring(L, lua_upvalueindex(2));
    luaL_checktype(L, 1, LUA_TTABLE);
    SrcLoc loc = caller_loc(L);
    int len = (int)luaL_len(L, 1);
    if (len < 2) dsl_error(L, loc, "net \"%s\": expected input{...} followed by layers", name);
    lua_geti(L, 1, 1);
    Layer **first = luaL_testudata(L, -1, LAYER);
    if (!first || (*first)->kind != (LayerKind)LAYER_INPUT)
        dsl_error(L, loc, "net \"%s\": the first entry must be input{...}, the per-sample input shape", name);
    lua_pop(L, 1);

    Net *net = xalloc(sizeof *net);
    net->name = xstrdup(name);
    net->loc = loc;
    net->input = (*first)->to;
    Layer **specs = xalloc(sizeof(Layer *) * (size_t)len);
    for (int i = 2; i <= len; i++) {
        lua_geti(L, 1, i);
        if (!luaL_testudata(L, -1, LAYER))
            dsl_error(L, loc, "net \"%s\": entry %d is %s, not a layer (did you call a layer on a tensor?)", name, i,
                      luaL_typename(L, -1));
        specs[i - 2] = to_layer(L, -1);
        lua_pop(L, 1);
    }
    net->n_layers = len - 1;
    bind_layers(L, m, net, net->name, specs, net->n_layers, net->input, &net->layers);
    Layer *last = net->layers[net->n_layers - 1];
    if (last->kind == LAYER_HEADS) {
        net->output_names = last->head_names;
        net->n_outputs = last->n_heads;
    } else {
        net->n_outputs = 1;
    }
    for (int i = 0; i < m->nets.len; i++)
        if (strcmp(((Net *)m->nets.items[i])->name, name) == 0) dsl_error(L, loc, "net \"%s\" is defined twice", name);
    vec_push(&m->nets, net);
    Net **ud = lua_newuserdatauv(L, sizeof(Net *), 0);
    *ud = net;
    luaL_setmetatable(L, NET);
    return 1;
}

static int f_net(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    if (!is_identifier(name)) ERROR_HERE(L, "net: name '%s' must be an identifier (letters, digits, _)", name);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, net_define, 2);
    return 1;
}

/* ---- optimizers ------------------------------------------------------------- */

static int new_optimizer(lua_State *L, Optimizer o, const char *fn)
{
    if (!(o.lr > 0)) ERROR_HERE(L, "%s: lr must be positive", fn);
    if (!(o.momentum >= 0 && o.momentum < 1)) ERROR_HERE(L, "%s: momentum must be in [0, 1)", fn);
    if (!(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1)) ERROR_HERE(L, "%s: betas must be in [0, 1)", fn);
    if (!(o.alpha >= 0 && o.alpha < 1)) ERROR_HERE(L, "%s: alpha must be in [0, 1)", fn);
    if (!(o.eps >= 0)) ERROR_HERE(L, "%s: eps must not be negative", fn);
    Optimizer *ud = lua_newuserdatauv(L, sizeof(Optimizer), 0);
    *ud = o;
    luaL_setmetatable(L, OPTIMIZER);
    return 1;
}

static void opt_table(lua_State *L, const char *fn, const char *const *keys)
{
    lua_settop(L, 1);
    if (lua_isnil(L, 1)) {
        lua_newtable(L);
        lua_replace(L, 1);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    check_keys(L, 1, fn, keys);
}

static int f_sgd(lua_State *L)
{
    opt_table(L, "sgd", (const char *const[]){"lr", "momentum", NULL});
    return new_optimizer(L, (Optimizer){.kind = OPT_SGD, .lr = (float)opt_number(L, 1, "sgd", "lr", 0.01),
                                        .momentum = (float)opt_number(L, 1, "sgd", "momentum", 0)}, "sgd");
}

static int f_adam(lua_State *L)
{
    opt_table(L, "adam", (const char *const[]){"lr", "beta1", "beta2", "eps", NULL});
    return new_optimizer(L, (Optimizer){.kind = OPT_ADAM, .lr = (float)opt_number(L, 1, "adam", "lr", 1e-3),
                                        .beta1 = (float)opt_number(L, 1, "adam", "beta1", 0.9),
                                        .beta2 = (float)opt_number(L, 1, "adam", "beta2", 0.999),
                                        .eps = (float)opt_number(L, 1, "adam", "eps", 1e-8)}, "adam");
}

static int f_rmsprop(lua_State *L)
{
    opt_table(L, "rmsprop", (const char *const[]){"lr", "alpha", "eps", NULL});
    return new_optimizer(L, (Optimizer){.kind = OPT_RMSPROP, .lr = (float)opt_number(L, 1, "rmsprop", "lr", 1e-2),
                                        .alpha = (float)opt_number(L, 1, "rmsprop", "alpha", 0.99),
                                        .eps = (float)opt_number(L, 1, "rmsprop", "eps", 1e-8)}, "rmsprop");
}

/* ---- model ---------------------------------------------------------------------- */

static void read_step(lua_State *L, Model *m, int idx, int number, SrcLoc loc)
{
    if (!lua_istable(L, idx)) dsl_error(L, loc, "model: steps[%d] must be a table {name=, loss=, update=, optimizer=}", number);
    check_keys(L, idx, "step", (const char *const[]){"name", "loss", "update", "optimizer", NULL});
    Step *s = xalloc(sizeof *s);
    s->loc = loc;
    lua_getfield(L, idx, "name");
    s->name = lua_type(L, -1) == LUA_TSTRING ? xstrdup(lua_tostring(L, -1)) : NULL;
    if (!is_identifier(s->name)) dsl_error(L, loc, "model: steps[%d] needs a name that is an identifier", number);
    for (int i = 0; i < m->steps.len; i++)
        if (strcmp(((Step *)m->steps.items[i])->name, s->name) == 0) dsl_error(L, loc, "model: two steps are named '%s'", s->name);
    lua_getfield(L, idx, "loss");
    Node **loss = luaL_testudata(L, -1, TENSOR);
    if (!loss) dsl_error(L, loc, "step '%s': loss must be a tensor expression", s->name);
    s->loss = *loss;
    if (s->loss->batched || s->loss->dims.rank != 0)
        dsl_error(L, loc, "step '%s': the loss has shape %s; it must be a scalar (use mean or sum)", s->name,
                  dims_str(s->loss->dims, s->loss->batched));
    lua_getfield(L, idx, "update");
    if (luaL_testudata(L, -1, NET)) {
        vec_push(&s->update, to_net(L, -1));
    } else if (lua_istable(L, -1)) {
        int len = (int)luaL_len(L, -1);
        for (int i = 1; i <= len; i++) {
            lua_geti(L, -1, i);
            if (!luaL_testudata(L, -1, NET)) dsl_error(L, loc, "step '%s': update[%d] is not a net", s->name, i);
            vec_push(&s->update, to_net(L, -1));
            lua_pop(L, 1);
        }
    }
    if (s->update.len == 0) dsl_error(L, loc, "step '%s': update must be a net or a list of nets", s->name);
    lua_getfield(L, idx, "optimizer");
    Optimizer *o = luaL_testudata(L, -1, OPTIMIZER);
    if (!o) dsl_error(L, loc, "step '%s': optimizer must be sgd{...}, adam{...} or rmsprop{...}", s->name);
    s->optimizer = *o;
    lua_pop(L, 4);
    vec_push(&m->steps, s);
}

static int model_define(lua_State *L)
{
    Model *m = model_of(L);
    SrcLoc loc = caller_loc(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    check_keys(L, 1, "model", (const char *const[]){"batch", "steps", "sample", "reconstruct", "image_range", NULL});
    if (m->name) dsl_error(L, loc, "model: a spec defines one model");
    m->name = xstrdup(lua_tostring(L, lua_upvalueindex(2)));
    m->loc = loc;
    lua_getfield(L, 1, "batch");
    m->batch = lua_isnil(L, -1) ? 64 : (int)lua_tointeger(L, -1);
    if (!lua_isnil(L, -1) && (!lua_isinteger(L, -1) || lua_tointeger(L, -1) <= 0 || lua_tointeger(L, -1) > 65536))
        dsl_error(L, loc, "model: batch must be a positive integer");
    lua_pop(L, 1);
    m->image_lo = 0;
    m->image_hi = 1;
    lua_getfield(L, 1, "image_range");
    if (!lua_isnil(L, -1)) {
        lua_geti(L, -1, 1);
        lua_geti(L, -2, 2);
        if (!lua_isnumber(L, -2) || !lua_isnumber(L, -1) || !(lua_tonumber(L, -2) < lua_tonumber(L, -1)))
            dsl_error(L, loc, "model: image_range must be {lo, hi} with lo < hi, as in {-1, 1}");
        m->image_lo = (float)lua_tonumber(L, -2);
        m->image_hi = (float)lua_tonumber(L, -1);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "steps");
    if (!lua_istable(L, -1) || luaL_len(L, -1) == 0) dsl_error(L, loc, "model: steps must be a non-empty list of steps");
    int n = (int)luaL_len(L, -1);
    for (int i = 1; i <= n; i++) {
        lua_geti(L, -1, i);
        read_step(L, m, lua_gettop(L), i, loc);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "sample");
    if (!lua_isnil(L, -1)) {
        Node **e = luaL_testudata(L, -1, TENSOR);
        if (e && (*e)->batched) m->sample_expr = *e;
        else if (luaL_testudata(L, -1, NET)) m->sample = to_net(L, -1);
        else dsl_error(L, loc, "model: sample must be a net (its input is drawn from N(0,1)) or a tensor expression "
                               "of noise and data.labels");
        if (m->sample && m->sample->n_outputs != 1) dsl_error(L, loc, "model: the sample net must have one output");
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "reconstruct");
    if (!lua_isnil(L, -1)) {
        Node **r = luaL_testudata(L, -1, TENSOR);
        if (!r || !(*r)->batched) dsl_error(L, loc, "model: reconstruct must be a tensor expression of data.images");
        m->reconstruct = *r;
    }
    lua_pop(L, 1);
    Model **ud = lua_newuserdatauv(L, sizeof(Model *), 0);
    *ud = m;
    luaL_setmetatable(L, MODEL);
    return 1;
}

static int f_model(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    if (!is_identifier(name)) ERROR_HERE(L, "model: name '%s' must be an identifier (letters, digits, _)", name);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, model_define, 2);
    return 1;
}

/* ---- registration ---------------------------------------------------------------- */

static void set_activation_layer(lua_State *L, const char *name, Activation act)
{
    Layer *l = new_layer(L, LAYER_ACTIVATION, (SrcLoc){"(builtin)", 0});
    l->act = act;
    l->alpha = act == ACT_LEAKY_RELU ? DEFAULT_LEAKY_ALPHA : 0;
    lua_setglobal(L, name);
}

void dsl_open(lua_State *L, Model *m)
{
    static const luaL_Reg tensor_meta[] = {{"__add", t_add}, {"__sub", t_sub}, {"__mul", t_mul}, {"__div", t_div},
                                           {"__unm", t_unm}, {"__tostring", t_tostring}, {"__index", t_index},
                                           {NULL, NULL}};
    static const luaL_Reg layer_meta[] = {{"__call", layer_call}, {"__tostring", layer_tostring}, {NULL, NULL}};
    static const luaL_Reg net_meta[] = {{"__call", net_call}, {"__tostring", net_tostring}, {NULL, NULL}};
    static const luaL_Reg globals[] = {
        {"exp", f_exp}, {"log", f_log}, {"sum", f_sum}, {"mean", f_mean}, {"mse", f_mse}, {"bce", f_bce},
        {"bce_logits", f_bce_logits}, {"kl_normal", f_kl_normal}, {"concat", f_concat}, {"onehot", f_onehot},
        {"input", f_input}, {"dense", f_dense}, {"reshape", f_reshape}, {"heads", f_heads}, {"net", f_net},
        {"conv2d", f_conv2d}, {"conv2d_transpose", f_conv2d_transpose}, {"maxpool2d", f_maxpool2d},
        {"batchnorm", f_batchnorm}, {"dropout", f_dropout}, {"normal", f_normal},
        {"sgd", f_sgd}, {"adam", f_adam}, {"rmsprop", f_rmsprop}, {"model", f_model}, {NULL, NULL}};
    const struct { const char *name; const luaL_Reg *fns; } metas[] = {
        {TENSOR, tensor_meta}, {LAYER, layer_meta}, {NET, net_meta}, {MODEL, NULL}, {OPTIMIZER, NULL}};
    for (size_t i = 0; i < sizeof metas / sizeof metas[0]; i++) {
        luaL_newmetatable(L, metas[i].name);
        if (metas[i].fns) {
            lua_pushlightuserdata(L, m);
            luaL_setfuncs(L, metas[i].fns, 1);
        }
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable"); /* specs cannot swap our metatables */
        lua_pop(L, 1);
    }
    lua_pushglobaltable(L);
    lua_pushlightuserdata(L, m);
    luaL_setfuncs(L, globals, 1);
    lua_pop(L, 1);

    set_activation_layer(L, "relu", ACT_RELU);
    set_activation_layer(L, "leaky_relu", ACT_LEAKY_RELU);
    set_activation_layer(L, "sigmoid", ACT_SIGMOID);
    set_activation_layer(L, "tanh", ACT_TANH);
    new_layer(L, LAYER_RESHAPE, (SrcLoc){"(builtin)", 0});
    lua_setglobal(L, "flatten");

    /* data.images and data.labels: one input node each, shared by every use. */
    m->image_dims = (Dims){3, {1, 28, 28}};
    lua_createtable(L, 0, 2);
    push_tensor(L, new_input(m, INPUT_IMAGES, "images", m->image_dims, (SrcLoc){m->file, 0}));
    lua_setfield(L, -2, "images");
    push_tensor(L, new_input(m, INPUT_LABELS, "labels", (Dims){0}, (SrcLoc){m->file, 0}));
    lua_setfield(L, -2, "labels");
    lua_setglobal(L, "data");

    lua_createtable(L, 0, 2);
    lua_pushlightuserdata(L, m);
    lua_pushcclosure(L, f_noise_normal, 1);
    lua_setfield(L, -2, "normal");
    lua_pushlightuserdata(L, m);
    lua_pushcclosure(L, f_noise_uniform, 1);
    lua_setfield(L, -2, "uniform");
    lua_setglobal(L, "noise");
}
