// deja: the command-line client. All logic lives in cli.cc (RunCli).
#include <iostream>

#include "client/cli.h"

int main(int argc, char** argv) { return deja::RunCli(argc, argv, std::cout, std::cerr); }
