-- expect: tests/specs/conv_on_flat.lua:2: conv2d: input has shape [784] per sample; expected [channels,height,width]
local D = net "d" { input {784}, conv2d {8, 3}, flatten, dense(1) }
