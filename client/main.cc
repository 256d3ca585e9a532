// deja: the command-line client. RunCli (client/cli.h) does all the work.
#include <iostream>

#include "client/cli.h"

int main(int argc, char** argv) { return deja::RunCli(argc, argv, std::cout, std::cerr); }
