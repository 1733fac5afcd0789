from dsrl_ray.app.cli import main

main()
