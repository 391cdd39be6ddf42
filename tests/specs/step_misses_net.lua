-- expect: tests/specs/step_misses_net.lua:6: step 'g': the loss does not depend on net 'generator', which it updates
local G = net "generator" { input {100}, dense(784), sigmoid, reshape {1, 28, 28} }
local D = net "discriminator" { input {1, 28, 28}, flatten, dense(1) }
return model "bad" {
  steps = { { name = "g", update = G, optimizer = adam {},
              loss = bce_logits(D(data.images), 1) } },
}
